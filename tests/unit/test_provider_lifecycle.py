"""Which tables `qoima provider apply` snapshots (infra/provider_lifecycle.py): those of the
regulation the running connector does not capture yet; none for a connector that does not exist
(it snapshots every table itself). tests/e2e/test_provider_lifecycle.py runs apply and remove."""
from __future__ import annotations

from connectors.debezium.shared import include_list
from infra.provider_lifecycle import new_tables
from model.names import SIGNAL_TABLE


def test_tables_the_running_connector_lacks_are_new(demo) -> None:
    older = demo.model_copy(update={"tables": [t for t in demo.tables if t.name != "social.appeals"]})
    assert [t.name for t in new_tables(demo, include_list(older, SIGNAL_TABLE))] == ["social.appeals"]
    assert new_tables(demo, include_list(demo, SIGNAL_TABLE)) == []


def test_a_table_under_a_quoted_name_is_matched_by_its_source_names(demo) -> None:
    older = demo.model_copy(update={"tables": [t for t in demo.tables if t.source_table != "Persons/Main"]})
    assert [t.name for t in new_tables(demo, include_list(older, SIGNAL_TABLE))] == ["registry_office.person_addresses"]


def test_a_new_connector_snapshots_by_itself(demo) -> None:
    assert new_tables(demo, None) == []
