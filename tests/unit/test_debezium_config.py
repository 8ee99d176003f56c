"""The Debezium connector config (connectors/debezium/) derived from a regulation."""
from __future__ import annotations

import json
import re

import pytest
import yaml

from connectors.debezium import connector_config
from connectors.debezium.shared import password_reference
from model.regulation import load_regulation


@pytest.fixture(scope="module")
def config(demo) -> dict[str, str]:
    return connector_config(demo)


def test_all_values_are_strings(config) -> None:
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in config.items())


def test_postgres_connector_with_pgoutput(config, unit_settings) -> None:
    assert config["connector.class"] == "io.debezium.connector.postgresql.PostgresConnector"
    assert config["plugin.name"] == "pgoutput"
    assert config["database.hostname"] == unit_settings.host
    assert config["database.port"] == str(unit_settings.ports.postgres)
    assert config["database.dbname"] == "gosdata"
    assert config["database.user"] == "qoima_capture"
    assert config["topic.prefix"] == "qoima.raw.demo"
    assert config["snapshot.mode"] == "initial"


def test_slot_and_publication_per_provider(config, demo) -> None:
    assert config["slot.name"] == "qoima_demo"
    assert config["publication.name"] == "qoima_demo_pub"
    other = demo.model_copy(update={"provider": "social2"})
    other_config = connector_config(other)
    assert (other_config["slot.name"], other_config["publication.name"]) == ("qoima_social2", "qoima_social2_pub")
    assert other_config["topic.prefix"] == "qoima.raw.social2"
    assert other_config["topic.heartbeat.prefix"] == "qoima.heartbeat.social2"


def test_publication_not_autocreated(config) -> None:
    assert config["publication.autocreate.mode"] == "disabled"


def test_heartbeat_from_regulation(config, demo) -> None:
    assert config["heartbeat.interval.ms"] == "10000"
    slow = demo.model_copy(update={"source": demo.source.model_copy(update={"heartbeat_seconds": 90})})
    assert connector_config(slow)["heartbeat.interval.ms"] == "90000"


def test_table_include_list_escapes_dots(config) -> None:
    entries = config["table.include.list"].split(",")
    # The signal table is captured too: Debezium reads incremental-snapshot signals from the WAL.
    # Tables go by their names at the source, quoted names included, each escaped as a regex.
    assert entries == [r"population\.persons", r"social\.organizations", r"social\.payments",
                       r"catalog\.type_samples", r"social\.appeals", r"Registry\ Office\.Persons\ Main",
                       r"Registry\ Office\.Persons/Main",
                       r"public\.qoima_signal"]
    assert config["signal.data.collection"] == "public.qoima_signal"
    # As anchored regexes they match the table and nothing that merely looks like it.
    for entry, name in zip(entries, ["population.persons", "social.organizations", "social.payments"]):
        assert re.fullmatch(entry, name)
        assert not re.fullmatch(entry, name.replace(".", "x"))


def test_an_include_entry_matches_its_exact_source_name_only() -> None:
    from connectors.debezium.shared import table_regex

    for schema, table in [("Реестр", "Persons Main"), ("a.b", 'say "hi" (v2)+'), ("s", "x*y?[z]")]:
        entry = table_regex(schema, table)
        assert re.fullmatch(entry, f"{schema}.{table}")
        assert not re.fullmatch(entry, f"{schema}x{table}")
        assert "," not in entry   # the include list is comma-separated


def test_lossless_encodings(config) -> None:
    assert config["decimal.handling.mode"] == "string"
    assert config["time.precision.mode"] == "adaptive_time_microseconds"
    assert config["value.converter.schemas.enable"] == "false"
    assert config["tombstones.on.delete"] == "true"


def test_password_is_a_directory_reference(config, unit_settings, demo_password_file, demo_password) -> None:
    assert config["database.password"] == f"${{dir:{unit_settings.secrets_dir}:demo-source-password}}"
    assert demo_password_file.read_text().strip() == demo_password  # the file really holds a secret
    dumped = json.dumps(config)
    assert demo_password not in dumped
    assert demo_password not in repr(config)


def test_env_only_password_refused(tmp_path) -> None:
    document = {
        "provider": "envonly", "organization": "o", "information_system": "i",
        "source": {"dbms": "postgresql", "host": "h", "port": 5432, "database": "d", "user": "u",
                   "password": {"env": "ENVONLY_PASSWORD"}},
        "tables": [{"name": "a.b", "primary_key": ["id"], "columns": [{"name": "id", "type": "bigint", "nullable": False}]}],
    }
    path = tmp_path / "envonly.yaml"
    path.write_text(yaml.safe_dump(document))
    regulation = load_regulation(path, {})
    environ = {"ENVONLY_PASSWORD": "pw-from-env-123"}
    with pytest.raises(ValueError) as info:
        connector_config(regulation)
    message = str(info.value)
    assert "envonly" in message
    assert "file" in message
    assert "pw-from-env-123" not in message
    with pytest.raises(ValueError, match="file: /path"):
        password_reference(regulation)
    assert regulation.source.password.read(environ) == "pw-from-env-123"  # the env form still works for Qoima
