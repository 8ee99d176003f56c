"""Connections to the real stack's source (as its owner) and warehouse (as the analyst), and the
check that the stack is whole before each test that uses it."""
from __future__ import annotations

import psycopg
import pytest

from infra.disk import GIB, free_bytes
from infra.processes import log_tail
from infra.stack import ORDER, SOURCE_DB
from sinks.clickhouse_users import ANALYST_USER, client

# A component that stopped by itself -> the test after which it was first found stopped.
_FOUND_STOPPED: dict[str, str] = {}


@pytest.fixture(scope="session")
def pg(stack):
    with psycopg.connect(stack.pg_admin_conninfo(SOURCE_DB), autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def ch(stack):
    return client(stack.s, ANALYST_USER)


@pytest.fixture(scope="session")
def started(stack) -> tuple[str, ...]:
    """The components `qoima up` started for the session."""
    return tuple(name for name in ORDER if stack.managed(name).pid() is not None)


@pytest.fixture(autouse=True)
def stack_whole(request):
    """A test that uses the stack starts with every component of the session running. One that
    stopped by itself (Kafka on a full disk, say) fails the tests after it at once, named, with
    the free disk and the end of its log, instead of each test waiting out its own timeout for
    data that can no longer flow. Tests that stop or kill a component start it again."""
    if "stack" not in request.fixturenames:
        yield
        return
    stack, names = request.getfixturevalue("stack"), request.getfixturevalue("started")
    stopped = [name for name in names if stack.managed(name).pid() is None]
    if stopped:
        free = free_bytes(stack.s.home) / GIB
        lines = [f"{', '.join(stopped)} stopped during an earlier test and did not start again; "
                 f"{free:.1f} GB free under {stack.s.home}"]
        for name in stopped:
            lines.append(f"{name}: first found stopped after {_FOUND_STOPPED.get(name, 'an earlier test')}; "
                         f"last lines of {stack.managed(name).log_file}:\n{log_tail(stack.managed(name).log_file, 15)}")
        pytest.fail("\n".join(lines), pytrace=False)
    yield
    for name in names:
        if name not in _FOUND_STOPPED and stack.managed(name).pid() is None:
            _FOUND_STOPPED[name] = (f"{request.node.nodeid} ({free_bytes(stack.s.home) / GIB:.1f} GB free "
                                    "under QOIMA_HOME then)")


def pytest_terminal_summary(terminalreporter):
    """Near the end of the output, where a CI log that shows only its tail still shows it."""
    if _FOUND_STOPPED:
        terminalreporter.section("stack components that stopped by themselves")
        for name, after in _FOUND_STOPPED.items():
            terminalreporter.write_line(f"{name}: first found stopped after {after}")
