"""The corrections history DDL (sinks/ddl.py), the quality assessment (governance/quality_assessment.py)
and coverage (governance/coverage.py), with a fake ClickHouse client that records the queries and
answers with canned rows, and a fake source connection. The SQL itself ran against ClickHouse
26.9 (embedded chdb) when it was written; here we check what it asks and what is made of the answers.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY

from model.rules import Rule, parse_rule
from governance import assessor, coverage, quality_assessment as qa
from sinks.ddl import create_table_sql, history_sql, meta_tables_sql
from model.names import META_DB
from streams.quality import RuleSet
from tests.unit.test_router import PERSONS_RAW, envelope, person_row

UTC = timezone.utc


class FakeClient:
    """Answers a query with the rows of the first (substring, rows) pair it contains."""

    def __init__(self, answers=(), command_answers=()) -> None:
        self.answers = list(answers)
        self.command_answers = list(command_answers)
        self.queries: list[str] = []
        self.commands: list[str] = []
        self.inserts: list[tuple] = []

    def query(self, sql: str, parameters=None, settings=None):
        self.queries.append(sql)
        for key, rows in self.answers:
            if key in sql:
                return SimpleNamespace(result_rows=rows)
        raise AssertionError(f"unexpected query: {sql}")

    def command(self, sql: str, parameters=None, settings=None):
        self.commands.append(sql)
        for key, value in self.command_answers:
            if key in sql:
                return value
        return None

    def insert(self, table, rows, column_names=None, settings=None):
        self.inserts.append((table, rows, column_names))


def rule(**fields) -> Rule:
    return parse_rule(fields)


@pytest.fixture(scope="module")
def regulation(demo):
    """The demo regulation with rules of every kind declared here, whatever demo.yaml holds today."""
    persons = demo.table("population.persons").model_copy(update={"rules": [
        rule(name="iin_valid", kind="accuracy", column="iin", check="identifier", identifier="iin"),
        rule(name="kato_known", kind="accuracy", column="kato_code", check="reference", reference="kato_regions"),
        rule(name="kato_present", kind="completeness", columns=["kato_code"]),
        rule(name="birth_not_future", kind="consistency", expression="birth_date <= today"),
        rule(name="iin_unique", kind="uniqueness", columns=["iin"]),
        rule(name="one_phone", kind="uniqueness", columns=["phone", "sex"]),
    ]})
    organizations = demo.table("social.organizations").model_copy(update={"rules": []})
    payments = demo.table("social.payments").model_copy(update={"rules": [
        rule(name="paid_has_date", kind="consistency", expression="status != 'paid' or paid_at is not None"),
        rule(name="person_exists", kind="integrity", column="person_iin", references="population.persons.iin",
             grace_seconds=30),
        rule(name="in_time", kind="timeliness", max_lag_seconds=60),
        rule(name="in_time_strict", kind="timeliness", max_lag_seconds=45),
        rule(name="complete_register", kind="coverage", tolerance=0.05),
    ]})
    return demo.model_copy(update={"tables": [persons, organizations, payments]})


@pytest.fixture(scope="module")
def persons(regulation):
    return regulation.table("population.persons")


@pytest.fixture(scope="module")
def payments(regulation):
    return regulation.table("social.payments")


# --- the corrections history (DM385 §49) -------------------------------------------------------


def test_history_table_view_and_one_time_copy(regulation, payments) -> None:
    create, copy, view = history_sql(regulation, payments)
    assert regulation.history_table(payments) == "demo__social__payments__history"
    assert create.startswith("CREATE TABLE IF NOT EXISTS udw.`demo__social__payments__history` "
                             "AS udw.`demo__social__payments`\nENGINE = MergeTree\n")
    assert "ORDER BY (`payment_id`, _version)" in create
    assert "TTL toDateTime(_source_ts) + INTERVAL 1825 DAY" in create          # the table's retention
    assert "non_replicated_deduplication_window = 10000" in create            # retried inserts dropped
    assert copy == ("INSERT INTO udw.`demo__social__payments__history` SELECT * FROM udw.`demo__social__payments` "
                    "WHERE (SELECT count() FROM udw.`demo__social__payments__history`) = 0")
    assert view == ("CREATE MATERIALIZED VIEW IF NOT EXISTS udw.`demo__social__payments__history_mv` "
                    "TO udw.`demo__social__payments__history` AS SELECT * FROM udw.`demo__social__payments`")


def test_history_orders_by_the_output_name_of_a_hashed_key(regulation, persons) -> None:
    keyed = persons.model_copy(update={"primary_key": ["iin"], "retention_days": None})
    create = history_sql(regulation, keyed)[0]
    assert "ORDER BY (`iin_hash`, _version)" in create and "TTL" not in create


def test_the_sink_creates_each_history_right_after_its_table(regulation) -> None:
    from sinks.clickhouse_sink import ClickHouseSink

    sink = object.__new__(ClickHouseSink)
    sink.regulations, sink.client = [regulation], FakeClient([("system.columns", [])])  # no table yet
    sink.ensure_tables()
    commands = sink.client.commands
    for table in regulation.tables:
        at = commands.index(create_table_sql(regulation, table))
        assert commands[at + 1:at + 4] == history_sql(regulation, table)
    assert any("qoima_meta.quality_assessments" in c for c in commands)


def test_quality_assessments_table() -> None:
    ddl = next(s for s in meta_tables_sql() if "quality_assessments" in s)
    for column in ("ts DateTime64(3, 'UTC')", "provider LowCardinality(String)", "`table` LowCardinality(String)",
                   "indicator LowCardinality(String)", "`column` String DEFAULT ''", "value Float64",
                   "rows UInt64"):
        assert column in ddl
    assert "ENGINE = MergeTree\nORDER BY (`table`, indicator, ts)" in ddl


# --- the SQL of the assessment -------------------------------------------------------------------


def test_current_rows_only(regulation) -> None:
    for table in regulation.tables:
        sql = qa.current_sql(regulation, table)
        assert f"FROM udw.`{regulation.warehouse_table(table)}` FINAL WHERE _is_deleted = 0" in sql
        assert sql.startswith("SELECT count(), ")


def test_notes_are_matched_by_rule_kind(regulation, persons, payments) -> None:
    sql = qa.current_sql(regulation, persons)
    incomplete, inaccurate, inconsistent = (qa.incomplete_sql(persons), qa.inaccurate_sql(persons),
                                            qa.inconsistent_sql(persons))
    assert f"countIf(NOT ({incomplete}))" in sql and f"countIf(NOT ({inaccurate}))" in sql
    assert "IN ('kato_present')" in incomplete and "iin_valid" not in incomplete
    assert "IN ('iin_valid', 'kato_known')" in inaccurate and qa.IDENTIFIER_NOTE_PATTERN in inaccurate
    assert "IN ('birth_not_future')" in inconsistent
    # Without rules of a kind nothing is counted against it, but invalid identifiers still are.
    organizations = regulation.table("social.organizations")
    assert qa.inconsistent_sql(organizations) == "0"
    assert qa.inaccurate_sql(organizations) == f"arrayExists(d -> match(d, '{qa.IDENTIFIER_NOTE_PATTERN}'), _defects)"
    assert "IN ('paid_has_date')" in qa.inconsistent_sql(payments)


def test_non_nullable_columns_by_their_warehouse_names(persons) -> None:
    incomplete = qa.incomplete_sql(persons)
    for name in ("person_id", "iin_hash", "birth_date_year", "sex", "status", "updated_at"):
        assert f"isNull(`{name}`)" in incomplete
    # dropped (last_name...) and nullable (phone, kato_code) columns are not required
    for name in ("last_name", "iin", "phone_hash", "kato_code_region", "birth_date"):
        assert f"isNull(`{name}`)" not in incomplete


def test_uniqueness_maps_rule_columns_to_output_names(regulation, persons) -> None:
    sets = qa.uniqueness_sets(persons)
    assert sets == [("iin_hash", ["iin"]), ("phone_hash, sex", ["phone", "sex"])]
    sql = qa.current_sql(regulation, persons)
    assert "uniqExact(tuple(`iin_hash`))" in sql
    # an empty value counts as unique: distinct non-empty tuples plus the rows with an empty one
    assert ("(uniqExactIf(tuple(`phone_hash`, `sex`), NOT (isNull(`phone_hash`))) + countIf(isNull(`phone_hash`)))"
            in sql)
    # without a uniqueness rule, the primary key
    assert qa.uniqueness_sets(regulation.table("social.payments")) == [("", ["payment_id"])]


def test_uniqueness_of_a_dropped_column_is_not_measured(persons) -> None:
    table = persons.model_copy(update={"rules": [rule(name="names", kind="uniqueness", columns=["last_name"])]})
    assert qa.uniqueness_sets(table) == [("", ["person_id"])]


def test_actuality_window_follows_the_refresh(regulation, persons) -> None:
    assert "countIf(_source_ts >= now64(3) - INTERVAL 86400 SECOND)" in qa.current_sql(regulation, persons)
    monthly = regulation.model_copy(update={"source": regulation.source.model_copy(update={"refresh": "monthly"})})
    assert f"INTERVAL {62 * 86400} SECOND" in qa.current_sql(monthly, persons)
    assert qa.REFRESH_PERIOD_S == {"continuous": 86400, "hourly": 7200, "daily": 172800, "monthly": 5356800}


def test_integrity_against_the_referenced_current_rows(regulation, payments) -> None:
    person_exists = next(r for r in payments.rules if r.name == "person_exists")
    sql = qa.integrity_sql(regulation, payments, person_exists, [regulation])
    assert sql == (
        "SELECT count(), countIf(isNull(`person_iin_hash`) OR `person_iin_hash` IN (SELECT `iin_hash` FROM "
        "udw.`demo__population__persons` FINAL WHERE _is_deleted = 0)) FROM udw.`demo__social__payments` FINAL "
        "WHERE _is_deleted = 0 AND _source_ts < now64(3) - INTERVAL 30 SECOND")


def test_integrity_to_an_unregulated_table_is_not_measured(regulation, payments) -> None:
    elsewhere = rule(name="org_known", kind="integrity", column="org_bin", references="registry.companies.bin")
    assert qa.integrity_sql(regulation, payments, elsewhere, [regulation]) is None


def test_timeliness_over_every_version_loaded_in_the_last_hour(regulation, persons, payments) -> None:
    assert qa.timeliness_sql(regulation, payments) == (
        "SELECT count(), countIf(dateDiff('millisecond', _source_ts, _loaded_ts) <= 45000) "
        "FROM udw.`demo__social__payments__history` WHERE _loaded_ts >= now64(3) - INTERVAL 3600 SECOND")
    assert "<= 10000)" in qa.timeliness_sql(regulation, persons)   # no timeliness rule: 10 s


def test_note_patterns_match_what_the_router_writes(router, demo) -> None:
    """The SQL finds rule notes by the name that ends them, and identifier notes by their shape:
    checked on the notes the router really writes for a row with three defects."""
    out = router.route(PERSONS_RAW, 0, 7, envelope("c", person_row(
        iin="900101300127", kato_code=None, birth_date=20000)))   # bad check digit, no KATO, born 2024-10-04
    notes = list(out.defects)
    rules = {m.group(1) for n in notes if (m := re.search(qa.RULE_NOTE_PATTERN, n))}
    assert {"iin_valid", "kato_present", "birth_not_future"} <= rules
    identifier_notes = [n for n in notes if re.search(qa.IDENTIFIER_NOTE_PATTERN, n)]
    assert identifier_notes == ["iin: not a valid iin"]
    table = demo.table("population.persons")
    kinds = {r.name: r.kind.value for r in RuleSet(table).rules}
    assert {kinds[r] for r in rules if r in kinds} >= {"accuracy", "completeness", "consistency"}


# --- ratios from the answers ---------------------------------------------------------------------


def test_ratio() -> None:
    assert qa.ratio(3, 4) == 0.75
    assert qa.ratio(0, 0) == 1.0 and qa.ratio(None, None) == 1.0   # nothing measured
    assert qa.ratio(5, 4) == 1.0 and qa.ratio(-1, 4) == 0.0


def _persons_client(rows=1000) -> FakeClient:
    # count, complete, accurate, consistent, current, distinct iin, distinct (phone, sex), null phone, null kato
    current = (rows, 990, 950, 999, 400, 998, 700, 200, 10)
    return FakeClient([("FROM udw.`demo__population__persons` FINAL", [current]),
                       ("__history`", [(50, 45)])])


def test_assessment_of_a_table(regulation, persons) -> None:
    client = _persons_client()
    found = qa.assess(client, regulation, persons, [regulation])
    table_level = {i.indicator: (i.value, i.rows) for i in found.indicators if not i.column}
    assert table_level == {
        "completeness": (0.99, 1000), "accuracy": (0.95, 1000), "consistency": (0.999, 1000),
        "uniqueness": (0.7, 1000),        # the worse of its two rules
        "integrity": (1.0, 1000),         # no integrity rule
        "actuality": (0.4, 1000), "timeliness": (0.9, 50),
    }
    assert tuple(table_level) == qa.INDICATORS
    per_column = {(i.indicator, i.column): i.value for i in found.indicators if i.column}
    assert per_column == {("uniqueness", "iin_hash"): 0.998, ("uniqueness", "phone_hash, sex"): 0.7,
                          ("completeness", "phone_hash"): 0.8, ("completeness", "kato_code_region"): 0.99}
    assert found.rows == 1000 and found.provider == "demo" and found.table == "population.persons"
    assert len(client.queries) == 2   # one scan of the current rows, one of the history


def test_integrity_is_the_worst_rule(regulation, payments) -> None:
    client = FakeClient([("IN (SELECT `iin_hash`", [(80, 60)]),
                         ("FROM udw.`demo__social__payments` FINAL", [(100, 100, 100, 97, 100, 100, 40)]),
                         ("__history`", [(0, 0)])])
    found = qa.assess(client, regulation, payments, [regulation])
    assert found.value("integrity") == 0.75 and found.value("integrity", "person_iin_hash") == 0.75
    assert next(i.rows for i in found.indicators if i.indicator == "integrity" and not i.column) == 80
    assert found.value("timeliness") == 1.0          # nothing loaded in the last hour
    assert found.value("consistency") == 0.97
    assert found.value("completeness", "paid_at") == 0.6


def test_an_empty_table_is_all_ones_over_no_rows(regulation, persons) -> None:
    client = FakeClient([("FINAL", [(0, 0, 0, 0, 0, 0, 0, 0, 0)]), ("__history`", [(0, 0)])])
    found = qa.assess(client, regulation, persons, [regulation])
    assert {i.value for i in found.indicators} == {1.0}
    assert {i.rows for i in found.indicators} == {0}


def test_assess_all_names_the_tables_that_failed(regulation) -> None:
    client = _persons_client()   # knows only persons: the other tables' queries fail
    done, failed = qa.assess_all(client, [regulation])
    assert [a.table for a in done] == ["population.persons"]
    assert failed == ["demo.social.organizations: AssertionError", "demo.social.payments: AssertionError"]


# --- recording, the report, the metrics ----------------------------------------------------------


def test_record_report_and_render(regulation, persons) -> None:
    found = qa.assess(_persons_client(), regulation, persons, [regulation])
    found.ts = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    client = FakeClient()
    assert qa.record(client, [found]) == len(found.indicators)
    table, rows, columns = client.inserts[0]
    assert table == f"{META_DB}.quality_assessments" and columns == qa.COLUMNS
    assert rows[0] == [found.ts, "demo", "population.persons", "completeness", "", 0.99, 1000]

    client = FakeClient([("max(ts)", [(r[1], r[2], r[0], r[3], r[4], r[5], r[6]) for r in rows])])
    report = qa.latest(client)
    assert report == qa.report_of([found])
    assert "ORDER BY provider, `table`, indicator, `column`" in client.queries[0]
    entry = report[0]
    assert entry["ts"] == "2026-01-02T03:04:05Z" and list(entry["indicators"]) == list(qa.INDICATORS)
    assert entry["columns"]["completeness"]["phone_hash"] == {"value": 0.8, "rows": 1000}
    text = qa.render(report)
    assert "demo.population.persons  (assessed 2026-01-02T03:04:05Z)" in text
    assert re.search(r"completeness\s+99\.00%\s+1000", text)
    assert re.search(r"non-null of phone_hash\s+80\.00%\s+1000", text)
    assert "qoima dq assess" in qa.render([])


def test_export_gauges(regulation, persons) -> None:
    found = qa.assess(_persons_client(), regulation, persons, [regulation])
    qa.export(found)
    value = REGISTRY.get_sample_value
    assert value("qoima_quality_indicator", {"table": "population.persons", "indicator": "accuracy"}) == 0.95
    assert value("qoima_quality_column_completeness", {"table": "population.persons", "column": "phone_hash"}) == 0.8
    assert value("qoima_quality_assessment_timestamp_seconds", {"table": "population.persons"}) == found.ts.timestamp()


def test_the_assessor_records_and_exports(regulation) -> None:
    client = _persons_client()
    assessor.assess_quality(client, [regulation])          # two tables fail: logged, the third recorded
    assert any("quality_assessments" in c for c in client.commands)
    assert {r[2] for r in client.inserts[0][1]} == {"population.persons"}


def test_assess_and_record(regulation) -> None:
    client = _persons_client()
    report, failed = qa.assess_and_record(client, [regulation])
    assert [(entry["provider"], entry["table"]) for entry in report] == [("demo", "population.persons")]
    assert len(failed) == 2 and all(name.startswith("demo.") for name in failed)   # no canned rows for them
    assert any("quality_assessments" in c for c in client.commands)
    assert {r[2] for r in client.inserts[0][1]} == {"population.persons"}


def test_cli_parses_dq(monkeypatch, capsys, unit_settings) -> None:
    import json

    import qoima.cli as cli
    import sinks.clickhouse_users as users

    monkeypatch.setattr(cli, "_settings", lambda: unit_settings)
    monkeypatch.setattr(cli, "_regulations", lambda settings: [])
    monkeypatch.setattr(users, "writer_client", lambda settings: FakeClient())
    monkeypatch.setattr(qa, "latest", lambda client: [{"table": "demo.population.persons"}])
    monkeypatch.setattr(qa, "assess_and_record", lambda client, regulations: ([], []))
    monkeypatch.setattr(qa, "render", lambda report: f"{len(report)} table(s)")
    cli.main(["dq", "report", "--json"])                    # the latest report, as JSON
    assert json.loads(capsys.readouterr().out) == [{"table": "demo.population.persons"}]
    cli.main(["dq", "assess"])                              # assessed now, as text
    assert capsys.readouterr().out == "0 table(s)\n"


# --- coverage ------------------------------------------------------------------------------------


def _coverage(source: int, warehouse: int, tolerance: float = 0.01) -> coverage.Coverage:
    return coverage.Coverage("demo", "population.persons", source, warehouse, tolerance)


def test_tolerance_and_rule_name(regulation, persons, payments) -> None:
    assert coverage.tolerance(persons) == 0.01 and coverage.rule_name(persons) == "coverage"
    assert coverage.tolerance(payments) == 0.05 and coverage.rule_name(payments) == "complete_register"


def test_gap() -> None:
    assert _coverage(1000, 990).gap == 0.01 and not _coverage(1000, 990).diverged   # at the tolerance
    assert _coverage(1000, 989).diverged
    assert _coverage(1000, 1011).diverged                                            # extra rows too
    assert _coverage(0, 0).gap == 0 and _coverage(0, 3).gap == 3                     # max(source, 1)


def test_two_consecutive_rounds_open_one_incident() -> None:
    watch = coverage.CoverageWatch()
    assert watch.observe(_coverage(1000, 900)) is None            # in flight, perhaps
    found = watch.observe(_coverage(1000, 900))
    assert (found.rule, found.type, found.severity, found.count, found.origin) == \
        ("coverage", "coverage", "warning", 100, "coverage")
    assert found.key == "demo/population.persons/coverage"
    assert "source has 1000 rows, the warehouse 900" in found.detail and "2 consecutive rounds" in found.detail
    assert watch.observe(_coverage(1000, 900)) is None            # once per episode
    assert watch.observe(_coverage(1000, 1000)) is None           # recovered
    assert watch.observe(_coverage(1000, 900)) is None
    assert watch.observe(_coverage(1000, 900)) is not None        # a new episode


def test_alternating_rounds_never_open_one() -> None:
    watch = coverage.CoverageWatch()
    for _ in range(5):
        assert watch.observe(_coverage(1000, 900)) is None
        assert watch.observe(_coverage(1000, 1000)) is None


class FakeSource:
    def __init__(self, counts: dict[str, int], fail: bool = False) -> None:
        self.counts, self.fail, self.queries = counts, fail, []

    def __call__(self, regulation, environ):
        if self.fail:
            raise OSError("connection refused")
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def count_rows(self, table):
        self.queries.append(table.name)
        return self.counts[table.name]


def test_measure_counts_both_sides(regulation) -> None:
    source = FakeSource({"population.persons": 2000, "social.organizations": 50, "social.payments": 8000})
    client = FakeClient(command_answers=[("persons", 2000), ("organizations", 49), ("payments", 7000)])
    found = coverage.measure(client, [regulation], {}, connect=source)
    assert source.queries == ["population.persons", "social.organizations", "social.payments"]
    assert client.commands[0] == ("SELECT count() FROM udw.`demo__population__persons` FINAL "
                                  "WHERE _is_deleted = 0")
    assert [(c.table, c.source_rows, c.warehouse_rows, c.tolerance, c.diverged) for c in found] == [
        ("population.persons", 2000, 2000, 0.01, False),
        ("social.organizations", 50, 49, 0.01, True),
        ("social.payments", 8000, 7000, 0.05, True)]


def test_an_unreachable_source_is_skipped(regulation) -> None:
    assert coverage.measure(FakeClient(), [regulation], {}, connect=FakeSource({}, fail=True)) == []


class FakePublisher:
    def __init__(self, fail: int = 0) -> None:
        self.published, self.fail = [], fail

    def publish(self, detection) -> None:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("broker timeout")
        self.published.append(detection)


def test_the_assessor_publishes_a_lasting_gap_and_exports_counts(regulation, monkeypatch) -> None:
    rounds = iter([[_coverage(1000, 900)]] * 4)
    monkeypatch.setattr(coverage, "measure", lambda *args, **kwargs: next(rounds))
    watch, publisher = coverage.CoverageWatch(), FakePublisher(fail=1)
    assessor.check_coverage(None, [regulation], {}, watch, publisher)
    assert publisher.published == []
    value = REGISTRY.get_sample_value
    assert value("qoima_coverage_source_rows", {"table": "population.persons"}) == 1000
    assert value("qoima_coverage_warehouse_rows", {"table": "population.persons"}) == 900
    assert value("qoima_coverage_tolerance", {"table": "population.persons"}) == 0.01
    assessor.check_coverage(None, [regulation], {}, watch, publisher)   # second round: publishing fails
    assert publisher.published == []
    assessor.check_coverage(None, [regulation], {}, watch, publisher)   # retried
    assert [d.rule for d in publisher.published] == ["coverage"]
    assessor.check_coverage(None, [regulation], {}, watch, publisher)
    assert len(publisher.published) == 1
