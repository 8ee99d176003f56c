"""ClickHouse clients for Qoima's own users; passwords come by reference, never from config."""
from __future__ import annotations

import os
from pathlib import Path

import clickhouse_connect

from model.settings import Settings

WRITER_USER = "qoima_writer"
ANALYST_USER = "analyst"
ADMIN_USER = "qoima_admin"


def password(settings: Settings, user: str) -> str:
    """QOIMA_CLICKHOUSE_<USER>_PASSWORD, else the stack's secret file for that user."""
    variable = f"QOIMA_CLICKHOUSE_{user.upper()}_PASSWORD"
    if os.environ.get(variable):
        return os.environ[variable]
    path = password_file(settings, user)
    if not path.is_file():
        raise SystemExit(f"no password for ClickHouse user {user}: set {variable} or run `qoima up` to create {path}")
    return path.read_text().strip()


def password_file(settings: Settings, user: str) -> Path:
    return settings.secrets_dir / f"clickhouse-{user}-password"


def client(settings: Settings, user: str, **kwargs):
    return clickhouse_connect.get_client(host=settings.host, port=settings.ports.clickhouse_http,
                                         username=user, password=password(settings, user), **kwargs)


def writer_client(settings: Settings):
    return client(settings, WRITER_USER)
