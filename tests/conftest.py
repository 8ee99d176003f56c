"""Shared fixtures. The real stack starts once per test session, on shifted ports and in its
own QOIMA_HOME, so a developer's running stack is left alone; it is wiped at the end."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEST_HOME = REPO / "var" / "test-stack"


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
    yield local
    local.down(wipe=True)  # the logs stay; the data, gigabytes of it, must not pile up run after run
