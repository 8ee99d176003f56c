"""The incident life cycle (DM385 §49): allowed transitions, refusals that say where an incident
stands, transitions recorded append-only by the writer, the DDL and the CLI's wiring.
No ClickHouse: the journal runs against a fake clickhouse-connect client."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from model.regulation import Notify, Table
from governance.incident_journal import (ACTIONS, ALLOWED, INCIDENT_COLUMNS, STATUSES, TRANSITION_COLUMNS,
                                         TRANSITIONS_TABLE, Incident, IncidentJournal, TransitionError,
                                         check_transition, iso, move, render_list, render_show)
from sinks.ddl import INCIDENTS_VIEW_SQL, INCIDENT_TRANSITIONS_SQL, NOTIFICATIONS_SQL, meta_tables_sql

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)
KEY = "demo/population.persons/k_anonymity"

EXPECTED = {
    ("open", "acknowledged"), ("open", "resolved"), ("acknowledged", "resolved"),
    ("resolved", "closed"), ("resolved", "open"),
}


def incident_row(status="open", **overrides) -> dict:
    row = {"incident_key": KEY, "provider": "demo", "table": "population.persons", "rule": "k_anonymity",
           "type": "other", "severity": "warning", "count": 12, "detections": 2, "first_seen": T0,
           "last_seen": T0 + timedelta(minutes=5), "last_detail": "k=2 is below 5 over (sex): 3 of 40 classes",
           "status": status, "status_by": "", "status_ts": T0, "status_note": "",
           "opened_ts": T0 if status in ("open", "acknowledged") else None,
           "resolved_ts": T0 + timedelta(hours=1) if status in ("resolved", "closed") else None, "transitions": 0}
    row.update(overrides)
    return row


class FakeClient:
    """Answers the journal's queries from a row of the incidents view; records inserts."""

    def __init__(self, rows: list[dict] | None = None) -> None:
        self.rows = rows or []
        self.inserts: list[tuple[str, list, list]] = []
        self.queries: list[tuple[str, dict]] = []

    def query(self, sql: str, parameters=None, **_):
        self.queries.append((sql, parameters or {}))
        if "FROM qoima_meta.incidents" in sql:
            rows = self.rows
            if "key" in (parameters or {}):
                rows = [r for r in rows if r["incident_key"] == parameters["key"]]
            return SimpleNamespace(column_names=INCIDENT_COLUMNS,
                                   result_rows=[[r[c] for c in INCIDENT_COLUMNS] for r in rows])
        return SimpleNamespace(column_names=[], result_rows=[])

    def insert(self, table, data, column_names=None, **_):
        self.inserts.append((table, list(data), list(column_names)))


@pytest.mark.parametrize("current", STATUSES)
@pytest.mark.parametrize("target", STATUSES)
def test_only_the_life_cycle_transitions_are_allowed(current, target):
    if (current, target) in EXPECTED:
        check_transition(KEY, current, target)
    else:
        with pytest.raises(TransitionError) as refused:
            check_transition(KEY, current, target)
        message = str(refused.value)
        assert f"is {current}" in message and target in message and KEY in message
        for allowed in ALLOWED[current]:
            assert allowed in message, "the refusal names the allowed next steps"


def test_closing_an_open_incident_names_the_status_and_next_steps():
    with pytest.raises(TransitionError, match=r"is open: it cannot become closed. Allowed next steps: "
                                              r"ack \(-> acknowledged\), resolve \(-> resolved\)"):
        check_transition(KEY, "open", "closed")


def test_closed_is_final_for_people():
    with pytest.raises(TransitionError, match="closed is final; a new detection reopens"):
        check_transition(KEY, "closed", "open")


def test_cli_verbs_record_the_statuses():
    assert ACTIONS == {"ack": "acknowledged", "resolve": "resolved", "close": "closed", "reopen": "open"}


def test_a_valid_transition_is_appended_with_who_when_and_note():
    client = FakeClient([incident_row("open")])
    before = datetime.now(timezone.utc)
    done = IncidentJournal(client).record(KEY, "acknowledged", "aigerim", "looking at the region mapping")
    assert len(client.inserts) == 1
    table, rows, columns = client.inserts[0]
    assert table == TRANSITIONS_TABLE == "qoima_meta.incident_transitions"
    assert columns == TRANSITION_COLUMNS == ["incident_key", "status", "actor", "note", "ts"]
    assert rows == [[KEY, "acknowledged", "aigerim", "looking at the region mapping", done.ts]]
    assert done.ts.tzinfo is timezone.utc and done.ts.microsecond % 1000 == 0
    assert before - timedelta(seconds=1) <= done.ts <= datetime.now(timezone.utc)


def test_an_invalid_transition_writes_nothing():
    client = FakeClient([incident_row("open")])
    with pytest.raises(TransitionError, match="is open"):
        IncidentJournal(client).record(KEY, "closed", "tester")
    assert client.inserts == []


def test_unknown_incident_and_missing_actor_are_refused():
    client = FakeClient([])
    with pytest.raises(TransitionError, match="no incident 'demo/x/y' in the journal"):
        IncidentJournal(client).record("demo/x/y", "acknowledged", "tester")
    with pytest.raises(TransitionError, match="--by"):
        IncidentJournal(FakeClient([incident_row()])).record(KEY, "acknowledged", "  ")
    assert client.inserts == []


def test_a_reopened_incident_can_be_acknowledged_again():
    reopened = incident_row("open", status_by="qoima", transitions=3, status_note="detected again after its resolution")
    client = FakeClient([reopened])
    journal = IncidentJournal(client)
    assert journal.get(KEY).reopened
    journal.record(KEY, "acknowledged", "tester")
    assert client.inserts[0][1][0][1] == "acknowledged"


def test_list_filters_are_bound_parameters_not_sql_text():
    client = FakeClient([incident_row("open")])
    IncidentJournal(client).list(status="open", table="population.persons' OR 1=1 --")
    sql, parameters = client.queries[-1]
    assert "OR 1=1" not in sql and parameters["table"].endswith("--") and parameters["status"] == "open"
    with pytest.raises(TransitionError, match="unknown status 'fixed'"):
        IncidentJournal(client).list(status="fixed")


def test_rendering_shows_status_who_and_next_steps():
    incident = Incident.from_row(incident_row("acknowledged", status_by="tester", status_ts=T0 + timedelta(hours=2),
                                              status_note="on it", transitions=1))
    text = render_list([incident])
    assert "acknowledged" in text and "tester" in text and KEY in text
    shown = render_show(incident, [], [])
    assert "by tester at 2025-03-01T10:00:00.000Z: on it" in shown and "resolve (-> resolved)" in shown
    assert incident.as_json()["first_seen"] == "2025-03-01T08:00:00.000Z"
    assert iso(datetime(2025, 1, 1, 0, 0)) == "2025-01-01T00:00:00.000Z"   # naive means UTC


def test_ddl_declares_the_life_cycle_outbox_and_view_in_order():
    statements = meta_tables_sql()
    assert statements.index(INCIDENT_TRANSITIONS_SQL) < statements.index(INCIDENTS_VIEW_SQL)
    assert statements.index(NOTIFICATIONS_SQL) < statements.index(INCIDENTS_VIEW_SQL)
    compact = " ".join(INCIDENT_TRANSITIONS_SQL.split())
    assert ("incident_key String, status LowCardinality(String), actor String, note String, "
            "ts DateTime64(3, 'UTC')") in compact and "ENGINE = MergeTree" in compact
    outbox = " ".join(NOTIFICATIONS_SQL.split())
    for column in ("id String", "incident_key String", "event LowCardinality(String)", "url String",
                   "payload String", "created_ts DateTime64(3, 'UTC')", "attempts UInt32",
                   "delivered_ts Nullable(DateTime64(3, 'UTC'))", "last_error String", "_version UInt64"):
        assert column in outbox
    assert "ENGINE = ReplacingMergeTree(_version) ORDER BY id" in outbox
    view = " ".join(INCIDENTS_VIEW_SQL.split())
    assert view.startswith("CREATE OR REPLACE VIEW qoima_meta.incidents AS")
    for column in INCIDENT_COLUMNS:
        assert column in view


def test_notify_targets_in_the_regulation_must_be_http_urls():
    assert Notify(url="https://hooks.example.kz/qoima", name="ops").name == "ops"
    assert Notify(url="http://127.0.0.1:29999/hook").name is None
    for bad in ("ftp://example.kz/x", "hooks.example.kz/x", "http:///nohost", "file:///etc/passwd"):
        with pytest.raises(ValueError, match="http:// or https://"):
            Notify(url=bad)
    fields = {"name": "population.persons", "primary_key": ["person_id"],
              "columns": [{"name": "person_id", "type": "bigint", "nullable": False}]}
    assert Table(**fields).notify == []
    table = Table(**fields, notify=[{"url": "https://hooks.example.kz/a"}])
    assert [n.url for n in table.notify] == ["https://hooks.example.kz/a"]
    with pytest.raises(ValueError):
        Table(**fields, notify=[{"url": "https://hooks.example.kz/a", "token": "x"}])   # unknown key


def test_a_resolution_releases_the_held_rows(monkeypatch, unit_settings):
    import governance.incident_journal as journal_module

    client = FakeClient([incident_row("acknowledged")])
    released = []
    monkeypatch.setattr(journal_module, "load_all", lambda directory, environ: ["the regulations"])
    monkeypatch.setattr(journal_module, "release", lambda c, regulations, keys: released.append(
        (c, regulations, keys)) or {"social.payments": 1})
    heard = []
    done = move(unit_settings, IncidentJournal(client), KEY, "resolved", "tester", "fixed", recorded=heard.append)
    assert heard == [done.transition] and (done.transition.status, done.transition.note) == ("resolved", "fixed")
    assert done.released == {"social.payments": 1}
    assert released == [(client, ["the regulations"], {KEY})]   # every resolved or closed incident's key


def test_other_moves_release_nothing_and_read_no_regulation(monkeypatch, unit_settings):
    import governance.incident_journal as journal_module

    monkeypatch.setattr(journal_module, "load_all", lambda *_: pytest.fail("an ack must not need the regulations"))
    monkeypatch.setattr(journal_module, "release", lambda *_: pytest.fail("an ack releases nothing"))
    done = move(unit_settings, IncidentJournal(FakeClient([incident_row("open")])), KEY, "acknowledged", "tester")
    assert done.transition.status == "acknowledged" and done.released == {}


def test_cli_parses_the_incident_commands(monkeypatch, capsys, unit_settings):
    import qoima.cli as cli
    import sinks.clickhouse_users as users

    client = FakeClient([incident_row("open")])
    monkeypatch.setattr(users, "writer_client", lambda settings: client)
    monkeypatch.setattr(cli, "_settings", lambda: unit_settings)
    cli.main(["incidents", "ack", KEY, "--by", "tester", "--note", "on it"])
    assert client.inserts[0][1][0][:4] == [KEY, "acknowledged", "tester", "on it"]
    cli.main(["incidents", "list", "--status", "open", "--table", "population.persons"])
    assert client.queries[-1][1] == {"status": "open", "table": "population.persons"}
    assert KEY in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        cli.main(["incidents", "list", "--status", "fixed"])
    assert refused.value.code == 2


def test_cli_refuses_an_invalid_transition_with_a_message(monkeypatch, capsys, unit_settings):
    import qoima.cli as cli
    import sinks.clickhouse_users as users

    client = FakeClient([incident_row("open")])
    monkeypatch.setattr(users, "writer_client", lambda settings: client)
    monkeypatch.setattr(cli, "_settings", lambda: unit_settings)
    monkeypatch.setenv("USER", "aigerim")
    with pytest.raises(SystemExit) as refused:
        cli.main(["incidents", "close", KEY])
    assert "qoima incidents close: incident demo/population.persons/k_anonymity is open" in str(refused.value)
    assert "ack (-> acknowledged)" in str(refused.value) and client.inserts == []
    cli.main(["incidents", "ack", KEY])                     # default actor: $USER
    assert client.inserts[0][1][0][2] == "aigerim"
    assert f"{KEY}: acknowledged by aigerim" in capsys.readouterr().out
