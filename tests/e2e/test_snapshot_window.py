"""`qoima snapshot` honours the provider's minimum-load window, run as a user runs it, and
`qoima status` follows the load it starts.

The demo regulation is copied with a window that opens two hours from now, so the test does
not depend on the hour it runs at: the snapshot waits, `qoima status` shows it waiting, Ctrl-C
ends the wait cleanly; with `--now` it starts at once, with a warning.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tests.e2e.warehouse import poll_until


def _qoima(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qoima", *args], env=env, capture_output=True, text=True, timeout=180)


def _waiting(env: dict) -> list[dict]:
    result = _qoima(env, "status", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["waiting_snapshots"]


def test_a_snapshot_waits_for_the_window_unless_now(stack, pg, tmp_path):
    regulations = tmp_path / "regulations"
    shutil.copytree(stack.s.regulations_dir, regulations)
    opens = datetime.now(ZoneInfo("Asia/Almaty")) + timedelta(hours=2)
    window = f"{opens:%H}:00-{opens + timedelta(hours=1):%H}:00"
    demo = regulations / "demo.yaml"
    text = demo.read_text()
    assert 'min_load_window: "02:00-05:00"' in text
    demo.write_text(text.replace('min_load_window: "02:00-05:00"', f'min_load_window: "{window}"'))
    env = {**os.environ, "QOIMA_HOME": str(stack.s.home), "QOIMA_REGULATIONS_DIR": str(regulations)}

    waiting = subprocess.Popen([sys.executable, "-m", "qoima", "snapshot", "demo", "population.persons"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        shown = poll_until(lambda: _waiting(env), 60, "the waiting snapshot in `qoima status`")
        assert [(w["provider"], w["tables"], w["window"]) for w in shown] == \
            [("demo", ["population.persons"], f"{window} (Asia/Almaty)")]
        assert "waits for the minimum-load window" in _qoima(env, "status").stdout
    finally:
        waiting.send_signal(signal.SIGINT)   # Ctrl-C
        out, err = waiting.communicate(timeout=30)
    assert "waiting for the minimum-load window" in out and "requested" not in out
    assert waiting.returncode != 0 and "Traceback" not in err
    assert _waiting(env) == []

    pg.execute("ANALYZE population.persons")   # the statistics the load's estimate comes from
    rows = pg.execute("SELECT count(*) FROM population.persons").fetchone()[0]
    now = _qoima(env, "snapshot", "demo", "population.persons", "--now")
    assert now.returncode == 0, now.stderr
    assert f"minimum-load window is {window} (Asia/Almaty)" in now.stderr
    assert "incremental snapshot of population.persons requested" in now.stdout
    assert "qoima status" in now.stdout

    # `qoima status` follows the load: the source's estimate, rows read and loaded, the rate.
    def load() -> dict | None:
        result = _qoima(env, "status", "--json")
        assert result.returncode == 0, result.stderr
        mine = [entry for entry in json.loads(result.stdout)["loads"] if entry["table"] == "population.persons"]
        return mine[-1] if mine and mine[-1]["loaded"] >= 0.9 * rows else None

    progress = poll_until(load, 180, "the snapshot's rows loaded, in `qoima status`")
    assert abs(progress["estimate"] - rows) <= 0.05 * rows and progress["state"] in ("loading", "done")
    assert progress["rate"] > 0
    shown = _qoima(env, "status").stdout
    assert "Load of population.persons (demo): " in shown and f"of about {progress['estimate']:,}" in shown
