"""How a poll fails: retried (PollerError, any other exception) or fatal (PollerConfigError), and
what a failure may say. Nothing here quotes a row value: psycopg and library messages may, so
only our own messages and exception class names are ever shown."""
from __future__ import annotations

import psycopg


class PollerError(RuntimeError):
    """A poll failed and is retried; `kind` is the metric label, the message names no value."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class PollerConfigError(ValueError):
    """The regulation and the source disagree; the poller stops and says what to fix."""


def classify(exc: Exception) -> tuple[str, str]:
    """(metric kind, log text) of a failure."""
    if isinstance(exc, PollerError):
        return exc.kind, str(exc)
    state = getattr(exc, "sqlstate", None) if isinstance(exc, psycopg.Error) else None
    if state and state.startswith("28"):  # invalid authorization: the password file or the role
        return "source_login", f"the source refused the login (SQLSTATE {state}); check the account and its password"
    if isinstance(exc, psycopg.OperationalError):
        return "source_unreachable", f"source unreachable ({type(exc).__name__})"
    if isinstance(exc, psycopg.Error):
        return "source_error", f"the source refused a query ({type(exc).__name__}, SQLSTATE {state or '?'})"
    frame = exc.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    where = f" at {frame.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.tb_lineno}" if frame else ""
    return "internal", f"internal error {type(exc).__name__}{where}"
