"""Connections to the real stack's source (as its owner) and warehouse (as the analyst)."""
from __future__ import annotations

import psycopg
import pytest

from infra.stack import SOURCE_DB
from sinks.clickhouse_users import ANALYST_USER, client


@pytest.fixture(scope="session")
def pg(stack):
    with psycopg.connect(stack.pg_admin_conninfo(SOURCE_DB), autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def ch(stack):
    return client(stack.s, ANALYST_USER)
