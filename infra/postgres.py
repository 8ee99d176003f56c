"""The local PostgreSQL server: the demo provider's source, run as a process through pg_ctl.

initdb sets it up for logical decoding (`wal_level = logical`) with trusted local connections
over the Unix socket in the run directory, through which the stack administers it as `postgres`.
The demo database gets its schema and a capture account that may replicate, read the captured
schemas and write the signal table, nothing more; each PostgreSQL regulation gets its
publication, created by the data owner.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from connectors.source_reader import quote_identifier, relation
from infra.ports import port_open
from infra.processes import Managed, Progress, StackError, log_tail
from model.names import SIGNAL_TABLE, SIGNAL_TABLE_DDL
from model.settings import Settings

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SOURCE_DB = "gosdata"
CAPTURE_USER = "qoima_capture"


class LocalPostgres:
    def __init__(self, settings: Settings, progress: Progress) -> None:
        self.s = settings
        self.progress = progress
        self.managed = Managed("postgres", settings.run_dir, settings.log_dir / "postgres.log")

    def _as_owner(self) -> str | None:
        return "postgres" if os.geteuid() == 0 else None

    def admin_conninfo(self, dbname: str = "postgres") -> str:
        return f"host={self.s.run_dir} port={self.s.ports.postgres} user=postgres dbname={dbname}"

    # ---------------------------------------------------------------- server
    def start(self) -> None:
        data = self.s.data_dir / "postgres"
        owner = self._as_owner()
        if self.managed.pid() and port_open(self.s.host, self.s.ports.postgres):
            self.progress("postgres: already running")
            return
        for path in (self.s.data_dir, self.s.run_dir, self.s.log_dir):
            path.mkdir(parents=True, exist_ok=True)
        if owner:
            # The server refuses to run as root; its directories belong to the postgres user.
            shutil.chown(self.s.run_dir, owner)
            os.chmod(self.s.run_dir, 0o755)
        if not (data / "PG_VERSION").exists():
            self.progress("postgres: initdb")
            data.mkdir(parents=True, exist_ok=True)
            if owner:
                shutil.chown(data, owner)
            result = subprocess.run(
                (["runuser", "-u", owner, "--"] if owner else []) +
                [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
                 "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"],
                capture_output=True, text=True)
            if result.returncode != 0:
                raise StackError(f"initdb failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
            with open(data / "postgresql.conf", "a", encoding="utf-8") as conf:
                conf.write(
                    "\n# Qoima local stack\n"
                    "wal_level = logical\nmax_wal_senders = 10\nmax_replication_slots = 10\n"
                    f"listen_addresses = '{self.s.host}'\n"
                    "shared_buffers = 128MB\nmax_connections = 50\n"
                    # A slot whose consumer is gone must not fill the disk with WAL.
                    "max_slot_wal_keep_size = 2GB\n"
                )
        log = self.managed.log_file
        if owner:
            log.touch()
            shutil.chown(log, owner)
        result = subprocess.run(
            (["runuser", "-u", owner, "--"] if owner else []) +
            [str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o",
             f"-p {self.s.ports.postgres} -k {self.s.run_dir}", "start"],
            capture_output=True, text=True)
        if result.returncode != 0:
            raise StackError(f"PostgreSQL did not start: {result.stdout.strip()} {result.stderr.strip()}\n"
                             f"Last lines of {log}:\n{log_tail(log)}")
        self.managed.adopt(int((data / "postmaster.pid").read_text().split()[0]))
        self.progress(f"postgres: up on {self.s.host}:{self.s.ports.postgres}")

    # ---------------------------------------------------------------- the demo source
    def prepare_source(self) -> None:
        """The demo provider's side: database, schema, a least-privilege capture account."""
        import psycopg
        from psycopg import sql

        from infra.demo import source

        password = (self.s.secrets_dir / "demo-source-password").read_text().strip()
        with psycopg.connect(self.admin_conninfo(), autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (SOURCE_DB,)).fetchone():
                conn.execute(f"CREATE DATABASE {SOURCE_DB}")
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (CAPTURE_USER,)).fetchone()
            statement = "ALTER ROLE {} WITH LOGIN REPLICATION PASSWORD {}" if exists else \
                "CREATE ROLE {} WITH LOGIN REPLICATION PASSWORD {}"
            conn.execute(sql.SQL(statement).format(sql.Identifier(CAPTURE_USER), sql.Literal(password)))
        source.apply_schema(self.admin_conninfo(SOURCE_DB))
        with psycopg.connect(self.admin_conninfo(SOURCE_DB), autocommit=True) as conn:
            # Every schema a regulation captures from this database (registry: the marker-mode demo,
            # SELECT only; catalog: the type samples), so a new demo table needs no edit here.
            from model.regulation import load_all

            regulations = load_all(self.s.regulations_dir, self.s.regulation_env())
            schemas = sorted({table.schema_name for regulation in regulations
                              if regulation.source.database == SOURCE_DB for table in regulation.tables})
            for schema in (quote_identifier("postgresql", name) for name in schemas):
                conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {CAPTURE_USER}")
                conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {CAPTURE_USER}")
            # Incremental snapshots: the capture account writes signals (and Debezium its
            # watermarks) here, and nowhere else.
            conn.execute(SIGNAL_TABLE_DDL)
            conn.execute(f"GRANT SELECT, INSERT, DELETE ON {SIGNAL_TABLE} TO {CAPTURE_USER}")

    def ensure_publication(self, regulation) -> None:
        """Created by the data owner, so the capture account needs no ownership of the tables."""
        import psycopg

        tables = ", ".join(relation("postgresql", *pair) for pair in regulation.publication_tables)
        with psycopg.connect(self.admin_conninfo(regulation.source.database), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (regulation.publication_name,)).fetchone():
                conn.execute(f"ALTER PUBLICATION {regulation.publication_name} SET TABLE {tables}")
            else:
                conn.execute(f"CREATE PUBLICATION {regulation.publication_name} FOR TABLE {tables}")
