"""`qoima provider check`: everything capture needs from a provider's source, each failure with its fix.

Connected as the capture account, read-only (catalog views and settings any role may read), so
the check itself never harms the source. Each finding says what was checked and, when it fails,
the SQL or setting the data owner runs to fix it. Errors are what would make capture fail or
harm the source (a table whose key differs from the regulation's, so the provider's own UPDATEs
fail under a publication without a replica identity; a missing publication; WAL kept without
bound); warnings are what capture survives but an operator should know (docs/onboarding.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from connectors.source_reader import catalog_rows, pg_columns, primary_key, quote_identifier, relation
from model import names
from model.regulation import Regulation, Table
from model.types import parse_type

ERROR, WARNING, OK = "error", "warning", "ok"


@dataclass(frozen=True)
class Finding:
    status: str      # ok | warning | error
    subject: str     # what it is about: "server", "population.persons", ...
    what: str        # what was checked or found
    fix: str = ""    # the SQL or setting that fixes it


_TEXT_FAMILIES = {"text", "varchar", "char", "enum"}


def _compatible(actual: str, declared: Any, dbms: str) -> bool | None:
    """Whether values of the source's type read right as the declared type; None when the
    source's spelling is not one Qoima parses (then nothing is claimed)."""
    try:
        source = parse_type(actual, dbms)
    except ValueError:
        return None
    if source.family in _TEXT_FAMILIES and declared.family in _TEXT_FAMILIES:
        return True
    if source.family == "int" and declared.family == "int":
        return declared.args[0] >= source.args[0]  # declared no narrower than the source
    return source.family == declared.family


def compare_table(table: Table, dbms: str, columns: dict[str, str] | None, key: list[str],
                  replica_identity: str, relation: str) -> list[Finding]:
    """Pure: a regulated table against what the source's catalog says of it. `columns` maps the
    source's column names to their types as the catalog prints them (None: no such table);
    `key` is its primary key; `replica_identity` PostgreSQL's relreplident ('d', 'f', 'i', 'n';
    '' for MariaDB)."""
    name = table.name
    if columns is None:
        return [Finding(ERROR, name, "table not found, or not visible to the capture account",
                        f"create it, or GRANT USAGE ON SCHEMA / SELECT ON {relation} to the capture account, "
                        "or remove it from the regulation")]
    found: list[Finding] = []
    for column in table.columns:
        actual = columns.get(column.source_column)
        if actual is None:
            found.append(Finding(ERROR, name, f"column {column.source_column} declared but not at the source",
                                 f"remove {column.name} from the regulation, or check its spelling (source_name "
                                 "when the source's name needs quoting)"))
        else:
            compatible = _compatible(actual, column.source_type, dbms)
            if compatible is False:
                found.append(Finding(ERROR, name, f"column {column.name} is {actual} at the source, "
                                                  f"declared {column.type}", f"declare it as type: {actual!r}"))
            elif compatible is None:
                found.append(Finding(WARNING, name, f"column {column.name} is {actual} at the source, which the "
                                                    f"check cannot compare with the declared {column.type}",
                                     "compare them by hand (docs/type-mapping.md)"))
    undeclared = sorted(set(columns) - {c.source_column for c in table.columns})
    if undeclared:
        found.append(Finding(WARNING, name, f"column(s) not declared, so not loaded: {', '.join(undeclared)}",
                             "declare each with its action in the regulation if analysts need it"))
    declared_key = [table.column(k).source_column for k in table.primary_key]
    if key and sorted(key) != sorted(declared_key):
        warehouse = {c.source_column: c.name for c in table.columns}
        found.append(Finding(ERROR, name, f"the source's primary key is ({', '.join(key)}), the regulation "
                                          f"declares ({', '.join(declared_key)})",
                             f"set primary_key: [{', '.join(warehouse.get(k, k) for k in key)}] in the regulation"))
    if dbms == "postgresql":
        if not key and replica_identity not in ("f", "i"):
            # A published table without a replica identity refuses its own UPDATEs and DELETEs.
            found.append(Finding(ERROR, name, "no primary key and no replica identity: once published, the "
                                              "provider's UPDATEs and DELETEs on it would fail",
                                 f"ALTER TABLE {relation} ADD PRIMARY KEY "
                                 f"({', '.join(quote_identifier(dbms, k) for k in declared_key)}); "
                                 f"or ALTER TABLE {relation} REPLICA IDENTITY FULL;"))
        binary = [c.name for c in table.columns if c.source_type.family == "bytea"
                  or (c.source_type.family == "array" and "bytea" in c.type)]
        if binary and replica_identity != "f":
            found.append(Finding(WARNING, name, f"bytea column(s) {', '.join(binary)} under REPLICA IDENTITY "
                                                "DEFAULT: an unchanged large value arrives as NULL "
                                                "(docs/type-mapping.md, 'Unchanged large values')",
                                 f"ALTER TABLE {relation} REPLICA IDENTITY FULL;"))
    if not found:
        found.append(Finding(OK, name, f"present, {len(table.columns)} declared columns match, key "
                                       f"({', '.join(declared_key)})"))
    return found


def compare_publication(regulation: Regulation, published: set[tuple[str, str]] | None) -> Finding:
    """Pure: the publication's (schema, table) pairs against the regulated tables and the signal table."""
    wanted = set(regulation.publication_tables)
    tables = ", ".join(relation("postgresql", *pair) for pair in regulation.publication_tables)
    name = regulation.publication_name
    if published is None:
        return Finding(ERROR, "publication", f"publication {name} does not exist",
                       f"CREATE PUBLICATION {name} FOR TABLE {tables};")
    if published != wanted:
        missing = sorted(relation("postgresql", *pair) for pair in wanted - published)
        extra = sorted(relation("postgresql", *pair) for pair in published - wanted)
        detail = "; ".join(filter(None, [f"missing {', '.join(missing)}" if missing else "",
                                         f"not regulated {', '.join(extra)}" if extra else ""]))
        return Finding(ERROR, "publication", f"publication {name} differs from the regulation: {detail}",
                       f"ALTER PUBLICATION {name} SET TABLE {tables};")
    return Finding(OK, "publication", f"publication {name} covers exactly the {len(wanted)} tables")


class _Source:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def rows(self, query: str, params: tuple = ()) -> list[tuple]:
        return catalog_rows(self.conn, query, params)

    def one(self, query: str, params: tuple = ()) -> Any:
        rows = self.rows(query, params)
        return rows[0][0] if rows else None


def _postgresql(regulation: Regulation, source: _Source) -> list[Finding]:
    found: list[Finding] = []
    user = regulation.source.user

    def setting(name: str) -> str:
        return source.one("SELECT current_setting(%s)", (name,))

    wal_level = setting("wal_level")
    found.append(Finding(OK, "server", "wal_level = logical") if wal_level == "logical" else
                 Finding(ERROR, "server", f"wal_level = {wal_level}: logical decoding is off",
                         "ALTER SYSTEM SET wal_level = logical; -- then restart PostgreSQL"))
    slot = source.rows("SELECT active, coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint "
                       "FROM pg_replication_slots WHERE slot_name = %s", (regulation.slot_name,))
    slots_free = int(setting("max_replication_slots")) - int(source.one("SELECT count(*) FROM pg_replication_slots"))
    if slot:
        active, kept = slot[0]
        found.append(Finding(OK if active else WARNING, "server",
                             f"slot {regulation.slot_name} exists, {'active' if active else 'INACTIVE'}, "
                             f"keeps {kept / 2**20:.1f} MiB of WAL",
                             "" if active else "start the connector (qoima connector resume), or drop the slot "
                                               f"(SELECT pg_drop_replication_slot('{regulation.slot_name}')) "
                                               "if the provider is gone: an inactive slot keeps WAL"))
    elif slots_free < 1:
        found.append(Finding(ERROR, "server", "no replication slot free for the connector",
                             "ALTER SYSTEM SET max_replication_slots = <current + 1>; -- then restart"))
    else:
        found.append(Finding(OK, "server", f"{slots_free} replication slot(s) free; the connector creates "
                                           f"{regulation.slot_name}"))
    senders_free = int(setting("max_wal_senders")) - int(source.one("SELECT count(*) FROM pg_stat_replication"))
    if senders_free < 1 and not (slot and slot[0][0]):
        found.append(Finding(ERROR, "server", "no WAL sender free", "ALTER SYSTEM SET max_wal_senders = <current + 1>;"))
    keep = setting("max_slot_wal_keep_size")
    found.append(Finding(OK, "server", f"max_slot_wal_keep_size = {keep}") if keep not in ("-1", "-1MB") else
                 Finding(WARNING, "server", "max_slot_wal_keep_size is unlimited: a stopped connector's slot "
                                            "keeps WAL until the disk is full",
                         "ALTER SYSTEM SET max_slot_wal_keep_size = '20GB'; SELECT pg_reload_conf();"))
    replication = source.one("SELECT rolreplication FROM pg_roles WHERE rolname = current_user")
    found.append(Finding(OK, "grants", f"{user} has REPLICATION") if replication else
                 Finding(ERROR, "grants", f"{user} lacks REPLICATION", f"ALTER ROLE {user} REPLICATION;"))
    for table in regulation.tables:
        quoted = relation("postgresql", table.schema_name, table.table_name)
        oid = source.one("SELECT to_regclass(%s)::oid", (quoted,))
        if oid is None:
            found += compare_table(table, "postgresql", None, [], "", quoted)
            continue
        columns = {name: declared for name, declared, _, _ in pg_columns(source.conn, oid)}
        key = primary_key(source.conn, "postgresql", table.schema_name, table.table_name)
        identity = source.one("SELECT relreplident FROM pg_class WHERE oid = %s", (oid,))
        found += compare_table(table, "postgresql", columns, key, identity, quoted)
        if not source.one("SELECT has_table_privilege(%s::oid, 'SELECT')", (oid,)):
            found.append(Finding(ERROR, table.name, f"{user} cannot SELECT it (snapshots read it)",
                                 f"GRANT SELECT ON {quoted} TO {user};"))
        found += _like_twins(source, table, quoted)
    if regulation.polled:
        return found
    published = source.rows("SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = %s",
                            (regulation.publication_name,))
    exists = source.one("SELECT count(*) FROM pg_publication WHERE pubname = %s", (regulation.publication_name,))
    found.append(compare_publication(regulation, {tuple(pair) for pair in published} if exists else None))
    signal = source.one("SELECT to_regclass(%s)::oid", (names.SIGNAL_TABLE,))
    if signal is None:
        found.append(Finding(ERROR, "signal table", f"{names.SIGNAL_TABLE} is missing (incremental snapshots "
                                                    "are signalled through it)",
                             f"{names.SIGNAL_TABLE_DDL}; GRANT SELECT, INSERT, DELETE ON {names.SIGNAL_TABLE} TO {user};"))
    elif not source.one("SELECT has_table_privilege(%s::oid, 'INSERT')", (signal,)):
        found.append(Finding(ERROR, "signal table", f"{user} cannot INSERT into {names.SIGNAL_TABLE}",
                             f"GRANT SELECT, INSERT, DELETE ON {names.SIGNAL_TABLE} TO {user};"))
    else:
        found.append(Finding(OK, "signal table", f"{names.SIGNAL_TABLE} present and writable"))
    return found


def _like_twins(source: _Source, table: Table, quoted: str) -> list[Finding]:
    """Debezium 3.0 reads a streamed table's columns through JDBC metadata with its schema and
    table names as LIKE patterns, unescaped: a '_' or '%' in them also matches other relations,
    and their columns together stop the connector at the table's first change ("Duplicate key")."""
    if not any(c in table.schema_name + table.table_name for c in "_%"):
        return []
    twins = [f"{schema}.{name}" for schema, name in source.rows(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname LIKE %s AND c.relname LIKE %s "
        "AND NOT (n.nspname = %s AND c.relname = %s) ORDER BY 1, 2",
        (table.schema_name, table.table_name, table.schema_name, table.table_name))]
    if not twins:
        return []
    return [Finding(ERROR, table.name, f"Debezium reads its columns with {quoted} as a LIKE pattern, which also "
                                       f"matches {', '.join(twins)}: the first change streamed from it would stop "
                                       "the connector", f"rename {', '.join(twins)} (or this table) at the source")]


def binlog_retention(variables: dict[str, str]) -> Finding:
    """Pure: how long the server keeps its binary log, which bounds how long a connector may stop
    (or lag, qoima_source_binlog_lag_bytes) before changes are lost: less than a day is a warning."""
    seconds = int(variables.get("binlog_expire_logs_seconds") or 0) or \
        int(float(variables.get("expire_logs_days") or 0) * 86400)
    if seconds == 0:
        return Finding(OK, "server", "the binary log is kept until purged by hand: a stopped connector loses nothing, "
                                     "the server's disk holds it all")
    if seconds < 86400:
        return Finding(WARNING, "server", f"the binary log is kept {seconds / 3600:.1f} h: a connector stopped or "
                                          "behind for longer loses changes and needs a new snapshot",
                       "SET GLOBAL binlog_expire_logs_seconds = 604800; -- a week, and in the configuration")
    return Finding(OK, "server", f"the binary log is kept {seconds / 86400:.1f} days")


def _selectable(source: _Source, quoted: str) -> bool:
    """Whether the capture account may read the table (MariaDB grants SELECT per table too)."""
    import pymysql

    try:
        source.rows(f"SELECT 1 FROM {quoted} LIMIT 0")
        return True
    except (pymysql.err.OperationalError, pymysql.err.ProgrammingError):
        return False


def _mariadb(regulation: Regulation, source: _Source) -> list[Finding]:
    found: list[Finding] = []
    database, user = regulation.source.database, regulation.source.user
    variables = dict(source.rows("SELECT variable_name, variable_value FROM information_schema.global_variables "
                                 "WHERE variable_name IN ('LOG_BIN', 'BINLOG_FORMAT', 'BINLOG_ROW_IMAGE', 'SERVER_ID', "
                                 "'GTID_DOMAIN_ID', 'BINLOG_EXPIRE_LOGS_SECONDS', 'EXPIRE_LOGS_DAYS')"))
    variables = {k.lower(): str(v) for k, v in variables.items()}
    wanted = [("log_bin", "ON", "log-bin=mariadb-bin in the server's configuration, then restart"),
              ("binlog_format", "ROW", "SET GLOBAL binlog_format = 'ROW'; -- and in the configuration"),
              ("binlog_row_image", "FULL", "SET GLOBAL binlog_row_image = 'FULL'; -- and in the configuration")]
    for name, value, fix in wanted:
        actual = variables.get(name, "?")
        found.append(Finding(OK, "server", f"{name} = {actual}") if actual.upper() == value else
                     Finding(ERROR, "server", f"{name} = {actual}, capture needs {value}", fix))
    server_id = variables.get("server_id")
    if regulation.source.server_id is not None and server_id == str(regulation.source.server_id):
        found.append(Finding(ERROR, "server", f"the regulation's server_id {server_id} is the server's own",
                             "choose another source.server_id in the regulation"))
    found.append(binlog_retention(variables))
    grants = " ".join(row[0] for row in source.rows("SHOW GRANTS")).upper()
    for privilege in ("REPLICATION SLAVE", "BINLOG MONITOR"):
        alias = {"REPLICATION SLAVE": "REPLICATION REPLICA", "BINLOG MONITOR": "REPLICATION CLIENT"}[privilege]
        if privilege not in grants and alias not in grants and "ALL PRIVILEGES ON *.*" not in grants:
            found.append(Finding(ERROR, "grants", f"{user} lacks {privilege}", f"GRANT {privilege} ON *.* TO '{user}'@'%';"))
    for table in regulation.tables:
        quoted = relation("mariadb", table.schema_name, table.table_name)
        columns = dict(source.rows("SELECT column_name, column_type FROM information_schema.columns "
                                   "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                                   (table.schema_name, table.table_name)))
        key = primary_key(source.conn, "mariadb", table.schema_name, table.table_name)
        found += compare_table(table, "mariadb", columns or None, key, "", quoted)
        if columns and not _selectable(source, quoted):
            found.append(Finding(ERROR, table.name, f"{user} cannot SELECT it (snapshots read it)",
                                 f"GRANT SELECT ON {quoted} TO '{user}'@'%';"))
    signal = source.one("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
                        (database, names.SIGNAL_TABLE_NAME))
    if not signal:
        from connectors.debezium.mariadb import signal_table_ddl

        found.append(Finding(ERROR, "signal table", f"{database}.{names.SIGNAL_TABLE_NAME} is missing",
                             f"{signal_table_ddl(regulation)}; GRANT INSERT ON `{database}`.`{names.SIGNAL_TABLE_NAME}` "
                             f"TO '{user}'@'%';"))
    else:
        found.append(Finding(OK, "signal table", f"{database}.{names.SIGNAL_TABLE_NAME} present"))
    return found


def check_source(regulation: Regulation, environ: dict[str, str],
                 connect: Callable[..., Any] | None = None) -> list[Finding]:
    """Every finding for the regulation's source; a failed connection is one error finding."""
    from connectors.source_reader import connect_source

    source = regulation.source
    try:
        conn = (connect or connect_source)(regulation, environ, timeout_ms=30_000, application="qoima-check",
                                           autocommit=True)
    except Exception as exc:  # noqa: BLE001 - every driver error means "cannot connect"; the message says which
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        return [Finding(ERROR, "connection", f"cannot connect to {source.dbms} {source.host}:{source.port}/"
                                             f"{source.database} as {source.user}: {reason}",
                        "check host, port and database in the regulation, the password reference "
                        f"({'file ' + source.password.file if source.password.file else 'env ' + str(source.password.env)})"
                        ", and that the account may log in from here")]
    try:
        checks = _mariadb if source.dbms == "mariadb" else _postgresql
        return [Finding(OK, "connection", f"connected to {source.host}:{source.port}/{source.database} as "
                                          f"{source.user}"), *checks(regulation, _Source(conn))]
    finally:
        conn.close()
