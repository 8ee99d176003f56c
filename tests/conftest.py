"""Shared fixtures. The real stack starts once per test session, on shifted ports and in its
own QOIMA_HOME, so a developer's running stack is left alone; its data is wiped at the end.
Each test that uses it starts with the whole stack running (`stack_whole`)."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEST_HOME = REPO / "var" / "test-stack"
# The components `qoima up` started for the session, and for one found stopped, the test after
# which it was.
_STARTED: list[str] = []
_FOUND_STOPPED: dict[str, str] = {}
# The sources' logs may quote a row's values (a constraint's DETAIL): named, never printed.
_SOURCES = ("postgres", "mariadb")


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def settings():
    os.environ["QOIMA_HOME"] = str(TEST_HOME)
    os.environ.setdefault("QOIMA_PORT_SHIFT", "1000")
    # Small batches and a short batch window: the tests look for rows within seconds.
    os.environ.setdefault("QOIMA_SINK_BATCH_MS", "200")
    os.environ.setdefault("QOIMA_ASSESS_INTERVAL_S", "5")
    # PD236 access events close every 5 s, not every minute (tests/e2e/test_pd236.py).
    os.environ.setdefault("QOIMA_PD236_INTERVAL_S", "5")
    from model.settings import Settings

    return Settings.from_env()


@pytest.fixture(scope="session")
def stack(settings):
    from infra.stack import LocalStack

    local = LocalStack(settings, progress=lambda line: print(f"[stack] {line}", flush=True))
    local.down(wipe=True)
    shutil.rmtree(TEST_HOME, ignore_errors=True)
    started = time.monotonic()
    try:
        local.up(demo_rate=None)
    except BaseException:
        local.down(wipe=False)  # what did start must not outlive the session
        raise
    print(f"[stack] started in {time.monotonic() - started:.1f}s", flush=True)
    _STARTED[:] = [name for name in local.running_order() if local.managed(name).pid() is not None]
    yield local
    local.down(wipe=True)  # the logs stay; the data, gigabytes of it, must not pile up run after run


def _log_end(stack, name: str) -> str:
    from infra.processes import log_tail

    log = stack.managed(name).log_file
    if name in _SOURCES:
        return f"its log: {log}"
    return f"last lines of {log}:\n{log_tail(log, 15)}"


@pytest.fixture(autouse=True)
def stack_whole(request):
    """A test that uses the stack starts with every component of the session running. One that
    stopped (Kafka on a full disk, say, or a test that failed before starting again what it
    stopped) fails the tests after it at once, named, with the free disk and the end of its
    log, instead of each test waiting out its own timeout for data that can no longer flow."""
    if "stack" not in request.fixturenames:
        yield
        return
    from infra.disk import GIB, free_bytes

    stack = request.getfixturevalue("stack")
    stopped = [name for name in _STARTED if stack.managed(name).pid() is None]
    if stopped:
        free = free_bytes(stack.s.home) / GIB
        lines = [f"{', '.join(stopped)} stopped during an earlier test and was not started again; "
                 f"{free:.1f} GB free under {stack.s.home}"]
        lines += [f"{name}: first found stopped after {_FOUND_STOPPED.get(name, 'an earlier test')}; "
                  f"{_log_end(stack, name)}" for name in stopped]
        pytest.fail("\n".join(lines), pytrace=False)
    yield
    for name in _STARTED:
        if name not in _FOUND_STOPPED and stack.managed(name).pid() is None:
            _FOUND_STOPPED[name] = (f"{request.node.nodeid} ({free_bytes(stack.s.home) / GIB:.1f} GB free "
                                    "under QOIMA_HOME then)")


def pytest_terminal_summary(terminalreporter):
    """Near the end of the output, where a CI log that shows only its tail still shows it."""
    if _FOUND_STOPPED:
        terminalreporter.section("stack components found stopped, not started again")
        for name, after in _FOUND_STOPPED.items():
            terminalreporter.write_line(f"{name}: first found stopped after {after}")
