"""The local MariaDB server: the second source type's demo (docs/mariadb.md), run as a process.

Started only when a regulation says `source.dbms: mariadb`. The server writes a row-based binlog
(`--log-bin`, ROW, FULL images) for Debezium to read as a replica, keeps time in UTC so that a
snapshot (read through JDBC) and the stream (read from the binlog) give one DATETIME the same
value, and refuses zero dates, which Debezium would deliver as null or 1970.

Administration goes through the `mariadb` client over the server's Unix socket as the OS user,
whom `mariadb-install-db` makes an administrator authenticated by the socket's peer
credentials, so no administrator password exists. The data owner's account
(`qoima_owner`, everything on the demo database, a random password in the secrets directory)
seeds the demo and is what the e2e tests write with; the capture account gets what Debezium's
MariaDB connector documents, nothing more.
"""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

from infra.processes import Managed, Progress, StackError, log_tail, wait_until
from model.settings import REPO_ROOT, Settings

MARIADBD = Path("/usr/sbin/mariadbd")
INSTALL_DB = Path("/usr/bin/mariadb-install-db")
CLIENT = Path("/usr/bin/mariadb")
SHOP_SCHEMA = REPO_ROOT / "infra" / "demo" / "shop.sql"
OWNER_USER = "qoima_owner"
# SELECT and SHOW DATABASES: the snapshot; RELOAD: its short global read lock
# (snapshot.locking.mode=minimal); REPLICATION SLAVE / CLIENT (BINLOG MONITOR on 10.5+): the binlog.
CAPTURE_GRANTS = "SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT"


def _os_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class LocalMariaDb:
    def __init__(self, settings: Settings, progress: Progress) -> None:
        self.s = settings
        self.progress = progress
        self.managed = Managed("mariadb", settings.run_dir, settings.log_dir / "mariadb.log")
        self.data = settings.data_dir / "mariadb"
        self.socket = settings.run_dir / "mariadb.sock"

    # ---------------------------------------------------------------- server
    def healthy(self) -> bool:
        return self.socket.exists() and self._client("SELECT 1", check=False).returncode == 0

    def start(self) -> None:
        if not MARIADBD.exists():
            raise StackError(f"{MARIADBD} is missing: run `make setup` (it installs the mariadb-server package)")
        if self.managed.pid() and self.healthy():
            self.progress("mariadb: already running")
            return
        for path in (self.s.data_dir, self.s.run_dir, self.s.log_dir):
            path.mkdir(parents=True, exist_ok=True)
        as_root = ["--user=root"] if os.geteuid() == 0 else []
        if not (self.data / "mysql").is_dir():
            self.progress("mariadb: mariadb-install-db")
            shutil.rmtree(self.data, ignore_errors=True)
            result = subprocess.run(
                [str(INSTALL_DB), "--no-defaults", f"--datadir={self.data}", *as_root,
                 "--auth-root-authentication-method=socket", f"--auth-root-socket-user={_os_user()}",
                 "--skip-test-db"],
                capture_output=True, text=True)
            if result.returncode != 0:
                raise StackError(f"mariadb-install-db failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
        self.managed.start([
            str(MARIADBD), "--no-defaults", *as_root, f"--datadir={self.data}",
            f"--bind-address={self.s.host}", f"--port={self.s.ports.mariadb}", f"--socket={self.socket}",
            f"--pid-file={self.s.run_dir / 'mariadbd.pid'}",
            f"--log-bin={self.data / 'mariadb-bin'}", "--binlog-format=ROW", "--binlog-row-image=FULL",
            "--server-id=1", "--default-time-zone=+00:00", "--skip-name-resolve",
            "--sql-mode=STRICT_TRANS_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO",
            "--innodb-buffer-pool-size=64M", "--max-connections=50",
            # A binlog a stopped connector still needs must not go, nor fill the disk: a week.
            "--expire-logs-days=7",
        ])
        wait_until(self.healthy, 60, "MariaDB", self.managed, interval=0.5)
        self.progress(f"mariadb: up on {self.s.host}:{self.s.ports.mariadb}")

    def _client(self, sql: str, *, database: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        # The OS user, over the socket: the administrator mariadb-install-db created for it.
        argv = [str(CLIENT), "--no-defaults", f"--socket={self.socket}", f"--user={_os_user()}",
                "--batch", "--skip-column-names"]
        if database:
            argv.append(f"--database={database}")
        result = subprocess.run(argv, input=sql, capture_output=True, text=True)
        if check and result.returncode != 0:
            # The statements hold passwords: the message quotes the server's error only.
            raise StackError(f"MariaDB administration failed: {result.stderr.strip()[-500:]}\n"
                             f"Last lines of {self.managed.log_file}:\n{log_tail(self.managed.log_file)}")
        return result

    # ---------------------------------------------------------------- the demo source
    def prepare(self, regulation, capture_password: str, owner_password: str) -> None:
        """The data owner's side for one MariaDB regulation: its database with the demo schema,
        the owner's and the capture account, and the signal table for incremental snapshots."""
        from connectors.debezium.mariadb import signal_table_ddl

        database, capture = regulation.source.database, regulation.source.user
        tables = SHOP_SCHEMA.read_text(encoding="utf-8") if database == "shop" else ""
        self._client(
            f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4;\n"
            f"CREATE USER IF NOT EXISTS '{OWNER_USER}'@'{self.s.host}' IDENTIFIED BY {_quote(owner_password)};\n"
            f"ALTER USER '{OWNER_USER}'@'{self.s.host}' IDENTIFIED BY {_quote(owner_password)};\n"
            f"GRANT ALL ON `{database}`.* TO '{OWNER_USER}'@'{self.s.host}';\n"
            f"CREATE USER IF NOT EXISTS '{capture}'@'{self.s.host}' IDENTIFIED BY {_quote(capture_password)};\n"
            f"ALTER USER '{capture}'@'{self.s.host}' IDENTIFIED BY {_quote(capture_password)};\n"
            f"GRANT {CAPTURE_GRANTS} ON *.* TO '{capture}'@'{self.s.host}';\n"
            f"{signal_table_ddl(regulation)};\n"
            f"GRANT INSERT ON `{database}`.`qoima_signal` TO '{capture}'@'{self.s.host}';\n")
        if tables:
            self._client(tables, database=database)

    def owner_connection(self, database: str):
        """A PyMySQL connection as the data owner (autocommit off, as the DB-API wants)."""
        import pymysql

        return pymysql.connect(host=self.s.host, port=self.s.ports.mariadb, user=OWNER_USER,
                               password=(self.s.secrets_dir / "mariadb-owner-password").read_text().strip(),
                               database=database, charset="utf8mb4")
