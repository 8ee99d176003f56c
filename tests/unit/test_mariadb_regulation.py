"""A MariaDB regulation (model/regulation.py) and its Debezium config (connectors/debezium/mariadb.py)."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from connectors.debezium import connector_config
from connectors.debezium.mariadb import CONNECTOR_CLASS, schema_history_topic, signal_table, signal_table_ddl
from connectors.debezium.mariadb import connector_config as mariadb_connector_config
from model.regulation import Column, Regulation, RegulationError, load_regulation
from model.settings import Settings

BASE = {
    "provider": "shop",
    "organization": "Shop ministry",
    "information_system": "Shop register",
    "source": {
        "dbms": "mariadb", "host": "127.0.0.1", "port": 13306, "database": "shop", "server_id": 5401,
        "user": "qoima_capture", "password": {"file": "/run/secrets/shop-password"},
    },
    "tables": [{
        "name": "shop.customers",
        "primary_key": ["id"],
        "columns": [
            {"name": "id", "type": "bigint unsigned", "nullable": False},
            {"name": "iin", "type": "char(12)", "nullable": False, "action": "hash", "kind": "iin"},
            {"name": "birth", "type": "datetime(3)", "action": "generalize", "to": "year"},
            {"name": "note", "type": "mediumtext", "action": "redact"},
            {"name": "active", "type": "tinyint(1)", "nullable": False},
            {"name": "tier", "type": "enum('basic','gold')"},
            {"name": "updated_at", "type": "timestamp(6)"},
        ],
    }],
}


def doc() -> dict:
    return copy.deepcopy(BASE)


def error_of(tmp_path: Path, document: dict) -> str:
    path = tmp_path / "shop.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    with pytest.raises(RegulationError) as info:
        load_regulation(path, {})
    return str(info.value)


@pytest.fixture
def shop() -> Regulation:
    return Regulation.model_validate(doc())


def test_mariadb_regulation_loads_with_mariadb_types(shop) -> None:
    table = shop.table("shop.customers")
    assert {c.dbms for c in table.columns} == {"mariadb"}
    assert table.column("id").output_types == ({"type": "bytes", "logicalType": "decimal", "precision": 20,
                                                "scale": 0}, "Decimal(20, 0)")
    assert table.column("active").source_type.clickhouse == "Bool"
    assert table.column("updated_at").source_type.clickhouse == "DateTime64(6, 'UTC')"
    assert shop.raw_topic(table) == "qoima.raw.shop.shop.customers"


def test_dbms_is_not_written_in_the_dumped_columns(shop) -> None:
    assert "dbms" not in shop.table("shop.customers").column("id").model_dump()


def test_postgresql_columns_keep_postgresql_types(demo) -> None:
    assert {c.dbms for t in demo.tables for c in t.columns} == {"postgresql"}


def test_a_type_is_read_in_its_sources_language(tmp_path) -> None:
    mariadb = doc()
    mariadb["tables"][0]["columns"].append({"name": "payload", "type": "jsonb"})
    assert "unsupported MariaDB column type 'jsonb'" in error_of(tmp_path, mariadb)
    postgres = doc()
    postgres["source"] = {**postgres["source"], "dbms": "postgresql"}
    del postgres["source"]["server_id"]
    assert "unsupported column type 'bigint unsigned'" in error_of(tmp_path, postgres)


def test_mariadb_needs_a_server_id(tmp_path) -> None:
    document = doc()
    del document["source"]["server_id"]
    assert "dbms 'mariadb' needs 'server_id" in error_of(tmp_path, document)


def test_server_id_is_refused_for_postgresql(tmp_path) -> None:
    document = doc()
    document["source"]["dbms"] = "postgresql"
    document["tables"][0]["columns"] = [{"name": "id", "type": "bigint", "nullable": False}]
    assert "server_id applies to dbms 'mariadb' only" in error_of(tmp_path, document)


def test_marker_capture_is_postgresql_only(tmp_path) -> None:
    document = doc()
    document["source"]["capture"] = "marker"
    assert "capture 'marker' is PostgreSQL-only" in error_of(tmp_path, document)


def test_a_table_is_named_after_the_sources_database(tmp_path) -> None:
    document = doc()
    document["tables"][0]["name"] = "other.customers"
    message = error_of(tmp_path, document)
    assert "a MariaDB table is named <database>.<table>" in message and "shop.customers" in message


def test_a_column_may_not_choose_its_dbms(tmp_path) -> None:
    document = doc()
    document["tables"][0]["columns"][0]["dbms"] = "postgresql"
    assert "remove 'dbms' from the column" in error_of(tmp_path, document)


def test_redact_and_generalize_check_mariadb_types() -> None:
    assert Column(name="note", dbms="mariadb", type="longtext", action="redact").output_name == "note_redacted"
    with pytest.raises(ValueError, match="action 'redact' needs a text column"):
        Column(name="doc", dbms="mariadb", type="json", action="redact")
    with pytest.raises(ValueError, match="needs a date column"):
        Column(name="y", dbms="mariadb", type="year", action="generalize", to="year")


# --- connector config -------------------------------------------------------------------------


def test_connector_config_dispatches_by_dbms(shop, demo) -> None:
    config = connector_config(shop, "127.0.0.1:29092")
    assert config["connector.class"] == CONNECTOR_CLASS == "io.debezium.connector.mariadb.MariaDbConnector"
    assert connector_config(demo)["connector.class"] == "io.debezium.connector.postgresql.PostgresConnector"
    assert config == mariadb_connector_config(shop, "127.0.0.1:29092")


def test_bootstrap_is_the_callers(shop, monkeypatch) -> None:
    # The CLI and the stack pass their Kafka (the local stack's, QOIMA_PORT_SHIFT and all); the
    # config reads no environment of its own.
    monkeypatch.setenv("QOIMA_PORT_SHIFT", "100")
    bootstrap = Settings.from_env().kafka_bootstrap
    assert connector_config(shop, bootstrap)["schema.history.internal.kafka.bootstrap.servers"] == "127.0.0.1:29192"
    with pytest.raises(ValueError, match="needs the Kafka bootstrap servers"):
        connector_config(shop)


def test_mariadb_connector_config(shop) -> None:
    config = mariadb_connector_config(shop, "kafka:9092")
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in config.items())
    assert config["database.server.id"] == "5401"
    assert config["database.include.list"] == "shop"
    assert config["table.include.list"] == r"shop\.customers,shop\.qoima_signal"
    assert config["signal.data.collection"] == signal_table(shop) == "shop.qoima_signal"
    assert config["schema.history.internal.kafka.topic"] == schema_history_topic(shop) == "qoima.schema-history.shop"
    assert config["schema.history.internal.kafka.bootstrap.servers"] == "kafka:9092"
    assert config["include.schema.changes"] == "false"
    assert config["topic.prefix"] == "qoima.raw.shop"
    assert config["topic.heartbeat.prefix"] == "qoima.heartbeat.shop"
    assert (config["decimal.handling.mode"], config["time.precision.mode"], config["binary.handling.mode"],
            config["bigint.unsigned.handling.mode"]) == ("string", "adaptive_time_microseconds", "base64", "precise")
    assert "database.dbname" not in config and "slot.name" not in config


def test_tls_is_required_off_the_loopback_interface(shop) -> None:
    assert mariadb_connector_config(shop, "kafka:9092")["database.ssl.mode"] == "disabled"
    remote = shop.model_copy(update={"source": shop.source.model_copy(update={"host": "db.example"})})
    assert mariadb_connector_config(remote, "kafka:9092")["database.ssl.mode"] == "required"


def test_password_is_a_reference_never_a_value(shop) -> None:
    config = mariadb_connector_config(shop, "kafka:9092")
    assert config["database.password"] == "${dir:/run/secrets:shop-password}"


def test_signal_table_ddl_is_in_the_sources_database(shop) -> None:
    assert signal_table_ddl(shop).startswith("CREATE TABLE IF NOT EXISTS `shop`.`qoima_signal` ")


def test_mariadb_config_refuses_postgresql_and_a_missing_bootstrap(shop, demo) -> None:
    with pytest.raises(ValueError, match="is not MariaDB"):
        mariadb_connector_config(demo, "kafka:9092")
    with pytest.raises(ValueError, match="needs the Kafka bootstrap servers"):
        mariadb_connector_config(shop, "")
