"""`qoima provider sql`: the script a provider's data owner runs once so that capture can start.

Written from the regulation alone, idempotent (run again after a table is added, it brings the
grants and the publication up to date) and without any secret: the capture account's password is
a client variable the owner sets on the command line from the same reference the regulation names:

    qoima provider sql demo | psql -v ON_ERROR_STOP=1 -v capture_password="$(cat <secret file>)" -d gosdata
    qoima provider sql shop | mariadb --init-command="SET @capture_password = '<password>'"

What it cannot know from the regulation (a table without a primary key, a server setting that needs
a restart) `qoima provider check` reports afterwards, with its fix.
"""
from __future__ import annotations

from connectors.source_reader import quote_identifier, relation
from model import names
from model.regulation import Regulation


def _postgresql(regulation: Regulation) -> str:
    source, role = regulation.source, regulation.source.user
    schemas = sorted({t.schema_name for t in regulation.tables})
    # Inside the string literal \gexec runs: a quote in a name is doubled once more.
    tables = ", ".join(relation("postgresql", *pair) for pair in regulation.publication_tables).replace("'", "''")
    lines = [
        f"-- Qoima: what capture of provider {regulation.provider} needs, run by the data owner in database "
        f"{source.database}.",
        "-- Server settings (ALTER SYSTEM needs a superuser; wal_level takes effect after a restart):",
        "ALTER SYSTEM SET wal_level = logical;",
        "-- A stopped connector's slot keeps WAL; this bounds what it may keep (PostgreSQL 13 and later).",
        "ALTER SYSTEM SET max_slot_wal_keep_size = '20GB';",
        "SELECT pg_reload_conf();",
        f"-- The capture account: logs in, reads the WAL (REPLICATION), reads the regulated tables.",
        f"SELECT format('CREATE ROLE %I LOGIN REPLICATION', '{role}') "
        f"WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') \\gexec",
        f"SELECT format('ALTER ROLE %I LOGIN REPLICATION PASSWORD %L', '{role}', :'capture_password') \\gexec",
    ]
    lines += [f"GRANT USAGE ON SCHEMA {quote_identifier('postgresql', schema)} TO {role};" for schema in schemas]
    lines += [f"GRANT SELECT ON {relation('postgresql', t.schema_name, t.table_name)} TO {role};"
              for t in regulation.tables]
    binary = [relation("postgresql", t.schema_name, t.table_name) for t in regulation.tables
              if any(c.source_type.family == "bytea" or "bytea" in c.type for c in t.columns)]
    if binary:
        lines.append("-- bytea under REPLICA IDENTITY DEFAULT arrives as NULL when unchanged (docs/type-mapping.md):")
        lines += [f"ALTER TABLE {name} REPLICA IDENTITY FULL;" for name in binary]
    lines += [
        "-- Incremental snapshots (qoima snapshot) are signalled through this table.",
        f"{names.SIGNAL_TABLE_DDL};",
        f"GRANT SELECT, INSERT, DELETE ON {names.SIGNAL_TABLE} TO {role};",
        "-- The publication: exactly the regulated tables and the signal table.",
        f"SELECT CASE WHEN EXISTS (SELECT FROM pg_publication WHERE pubname = '{regulation.publication_name}') "
        f"THEN 'ALTER PUBLICATION {regulation.publication_name} SET TABLE {tables}' "
        f"ELSE 'CREATE PUBLICATION {regulation.publication_name} FOR TABLE {tables}' END \\gexec",
        f"-- Then: qoima provider check {regulation.provider}",
    ]
    return "\n".join(lines) + "\n"


def _mariadb(regulation: Regulation) -> str:
    from connectors.debezium.mariadb import signal_table_ddl

    source, user = regulation.source, regulation.source.user
    database = source.database
    return "\n".join([
        f"-- Qoima: what capture of provider {regulation.provider} needs, run by the data owner (an account "
        "with SUPER or the BINLOG ADMIN privilege).",
        "-- Server settings: also put them in the server's configuration ([mysqld]), so that a restart keeps "
        "them; log_bin needs a restart if it is off.",
        "SET GLOBAL binlog_format = 'ROW';",
        "SET GLOBAL binlog_row_image = 'FULL';",
        f"-- The capture account (its password from the client variable @capture_password); server_id "
        f"{source.server_id} is the replica id Debezium reads the binlog under.",
        f"EXECUTE IMMEDIATE CONCAT('CREATE USER IF NOT EXISTS ''{user}''@''%'' IDENTIFIED BY ', "
        "QUOTE(@capture_password));",
        f"EXECUTE IMMEDIATE CONCAT('ALTER USER ''{user}''@''%'' IDENTIFIED BY ', QUOTE(@capture_password));",
        f"GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{user}'@'%';",
        "-- Incremental snapshots (qoima snapshot) are signalled through this table.",
        f"{signal_table_ddl(regulation)};",
        f"GRANT INSERT ON `{database}`.`{names.SIGNAL_TABLE_NAME}` TO '{user}'@'%';",
        f"-- Then: qoima provider check {regulation.provider}",
    ]) + "\n"


def owner_script(regulation: Regulation) -> str:
    return _mariadb(regulation) if regulation.source.dbms == "mariadb" else _postgresql(regulation)
