"""The processor's stall detector and the local stack's supervisor."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

from tenacity import wait_exponential

from infra import supervise
from schemas import retry



def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_supervisor_restarts_a_crashed_child(tmp_path, monkeypatch):
    monkeypatch.setattr(supervise, "FAIL_FAST_S", 0.0)
    monkeypatch.setattr(retry, "SUPERVISED_RESTART", wait_exponential(multiplier=0.05, max=30.0))
    runs = tmp_path / "runs"
    # Crashes twice, then exits cleanly: the supervisor restarts it twice and stops.
    code = (f"import pathlib,sys; p=pathlib.Path({str(runs)!r}); n=len(p.read_text()) if p.exists() else 0; "
            "p.write_text('x'*(n+1)); sys.exit(0 if n >= 2 else 3)")
    assert supervise.supervise("test", _python(code)) == 0
    assert runs.read_text() == "xxx"


def test_supervisor_fails_fast_on_a_start_up_failure(tmp_path):
    started = time.monotonic()
    assert supervise.supervise("test", _python("import sys; sys.exit(4)")) == 4
    assert time.monotonic() - started < 5


def test_sigterm_stops_child_and_supervisor():
    process = subprocess.Popen([sys.executable, "-m", "infra.supervise", "test", "--",
                                *_python("import time; time.sleep(60)")], cwd=supervise.__file__.rsplit("/infra/", 1)[0])
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0


def test_usage_error():
    assert supervise.main(["name"]) == 2


