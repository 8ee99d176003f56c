"""Historical loads: file reading (connectors/history.py), text and Debezium forms of values
(connectors/pg_text.py, connectors/debezium_encode.py), Router.route_row and load_history
(streams/history_load.py).

The central promise: a history row becomes exactly the clean record a Debezium event of the
same source row becomes, and nothing clear leaves, not even in the summary.
"""
from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from streams.versions import raw_event_version

from connectors.history import HistoryError, open_history, read_rows
from streams.history_load import HISTORY_VERSION, load_history
from streams.keys import pseudonym
from connectors.debezium_encode import encoder
from connectors.pg_text import text_parser
from model.types import ValueRefused
from streams.router import QUARANTINE_TOPIC
from tests.unit.conftest import FIXED_KEY

UTC = timezone.utc
PERSONS_RAW = "qoima.raw.demo.population.persons"
PERSONS_CLEAN = "qoima.clean.demo.population.persons"
PAYMENTS_RAW = "qoima.raw.demo.social.payments"
SOURCE_TS = 1_705_314_600_000

HEADER = ["person_id", "iin", "last_name", "first_name", "middle_name", "birth_date", "sex", "phone",
          "address", "kato_code", "status", "updated_at"]
IIN, IIN2 = "850101300124", "900101300126"
# Russian names only: CP1251 has no Ә, Қ, Ң, Ғ, Ү, Ұ, Ө, Һ.
ROWS = [
    ["42", IIN, "Сидорова", "Мария", "Ивановна", "1985-01-01", "F", "+7 701 234 56 78",
     "г. Алматы, ул. Абая, д. 10; кв. 5", "751110000", "active", "2024-01-15 16:30:00.123456+06"],
    ["43", IIN2, "Ёлкин", "Пётр", "", "01.01.1990", "M", "", "", "", "emigrated", "2024-01-15T10:30:00Z"],
]
CLEAR = [IIN, IIN2, "7012345678", "701 234 56 78", "Сидорова", "Мария", "Ивановна", "Ёлкин", "Пётр", "Абая",
         "751110000"]


def csv_text(delimiter: str, rows=ROWS, header=HEADER) -> str:
    def field(value: str) -> str:
        if delimiter in value or '"' in value or "\n" in value:
            return '"' + value.replace('"', '""') + '"'
        return value
    return "".join(delimiter.join(field(v) for v in line) + "\r\n" for line in [header, *rows])


def expected_rows(rows=ROWS) -> list[dict]:
    return [{name: (value or None) for name, value in zip(HEADER, row)} for row in rows]


class FakeProducer:
    """confluent_kafka.Producer's produce/poll/flush, keeping what was sent."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        self.fail = fail

    def produce(self, topic, value, key=None, on_delivery=None):
        self.sent.append((topic, key, value))
        on_delivery("Broker: Not enough in-sync replicas" if self.fail else None, None)

    def poll(self, timeout):
        return 0

    def flush(self, timeout):
        return 0


@pytest.fixture()
def master_key(monkeypatch):
    monkeypatch.setenv("QOIMA_MASTER_KEY", FIXED_KEY.hex())


def clean(codec, out) -> dict:
    name, record = codec.decode(out.value)
    assert name == out.topic
    record.pop("_processed_ts_ms")
    return record


# --- reading files ------------------------------------------------------------------------------


ENCODINGS = [
    ("utf-8", lambda t: t.encode("utf-8"), "utf-8"),
    ("utf-8 with BOM", lambda t: t.encode("utf-8-sig"), "utf-8-sig"),
    ("cp1251", lambda t: t.encode("cp1251"), "cp1251"),
    ("utf-16 LE with BOM", lambda t: ("\ufeff" + t).encode("utf-16-le"), "utf-16"),
    ("utf-16 BE with BOM", lambda t: ("\ufeff" + t).encode("utf-16-be"), "utf-16"),
    ("utf-16 LE without BOM", lambda t: t.encode("utf-16-le"), "utf-16-le"),
]


@pytest.mark.parametrize("delimiter", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
@pytest.mark.parametrize(("label", "encode", "codec_name"), ENCODINGS, ids=[e[0] for e in ENCODINGS])
def test_csv_encodings_and_delimiters(tmp_path, label, encode, codec_name, delimiter) -> None:
    path = tmp_path / "persons.csv"
    path.write_bytes(encode(csv_text(delimiter)))
    history = open_history(path)
    assert (history.format, history.encoding, history.delimiter) == ("csv", codec_name, delimiter)
    assert history.columns == HEADER
    assert list(read_rows(path)) == expected_rows()


def test_csv_position_reaches_file_size(tmp_path) -> None:
    path = tmp_path / "big.csv"
    path.write_text(csv_text(";", rows=ROWS * 2000), encoding="utf-8")
    history = open_history(path)
    assert (history.unit, history.total) == ("B", path.stat().st_size)
    positions = []
    for number, row, problem in history.records():
        positions.append(history.position)
    assert number == 4000 and problem is None
    assert positions == sorted(positions) and 0 < positions[0] < history.total
    assert history.position == history.total


def test_header_is_normalized_and_trailing_delimiters_tolerated(tmp_path) -> None:
    path = tmp_path / "p.csv"
    header = " Person_ID ;IIN;" + ";".join(HEADER[2:]) + ";\n"
    path.write_text(header + ";".join(ROWS[0]).replace("; кв.", ", кв.") + ";\n\n", encoding="utf-8")
    assert open_history(path).columns == HEADER
    assert len(list(read_rows(path))) == 1  # the blank line is skipped


def test_quoted_values_with_delimiter_quote_and_newline(tmp_path) -> None:
    path = tmp_path / "q.csv"
    row = list(ROWS[0])
    row[8] = 'ул. "Абая";\nкв. 5'
    path.write_text(csv_text(";", rows=[row]), encoding="utf-8")
    assert list(read_rows(path))[0]["address"] == row[8]


def test_damaged_utf8_is_refused_not_read_as_cp1251(tmp_path) -> None:
    path = tmp_path / "broken.csv"
    path.write_bytes(csv_text(";").encode("utf-8") + b"44;\xff\xfe;x\n")
    with pytest.raises(HistoryError, match="looks like UTF-8") as info:
        open_history(path)
    assert not any(c in str(info.value) for c in CLEAR)


def test_undetectable_encoding_is_refused(tmp_path) -> None:
    path = tmp_path / "odd.csv"
    path.write_bytes(b"person_id;last_name\n1;" + "Иванов".encode("cp1251") + b"\x98\n")
    with pytest.raises(HistoryError, match="cannot detect its encoding"):
        open_history(path)


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty"),
    (b"person_id;iin;person_id\n1;2;3\n", "more than once: person_id"),
    (b"person_id;;iin\n1;2;3\n", "have no name"),
    (b"\x00\x01\x02\x03\x00\x00\x07", "not a CSV file"),
    (b"PAR1 not really", "cannot be read as Parquet"),
])
def test_unusable_files(tmp_path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(HistoryError, match=message):
        open_history(path)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(HistoryError, match="cannot read .*nope.csv"):
        open_history(tmp_path / "nope.csv")


def persons_parquet(path: Path, ns: bool = False) -> None:
    table = pa.table({
        "person_id": pa.array([42, 43], pa.int64()),
        "iin": [IIN, IIN2],
        "last_name": ["Сидорова", "Ёлкин"],
        "first_name": ["Мария", "Пётр"],
        "middle_name": ["Ивановна", None],
        "birth_date": pa.array([date(1985, 1, 1), date(1990, 1, 1)], pa.date32()),
        "sex": ["F", "M"],
        "phone": ["+7 701 234 56 78", None],
        "address": [ROWS[0][8], None],
        "kato_code": ["751110000", None],
        "status": ["active", "emigrated"],
        "updated_at": pa.array([datetime(2024, 1, 15, 10, 30, 0, 123456, tzinfo=UTC),
                                datetime(2024, 1, 15, 10, 30, tzinfo=UTC)], pa.timestamp("ns" if ns else "us", tz="UTC")),
    })
    pq.write_table(table, path)


@pytest.mark.parametrize("ns", [False, True], ids=["micros", "nanos"])
def test_parquet_rows_are_typed(tmp_path, ns: bool) -> None:
    path = tmp_path / "persons.parquet"
    persons_parquet(path, ns)
    history = open_history(path)
    assert (history.format, history.total, history.unit, history.columns) == ("parquet", 2, "rows", HEADER)
    rows = list(read_rows(path))
    assert rows[0]["person_id"] == 42 and rows[0]["birth_date"] == date(1985, 1, 1)
    assert rows[0]["updated_at"] == datetime(2024, 1, 15, 10, 30, 0, 123456, tzinfo=UTC)
    assert type(rows[0]["updated_at"]) is datetime
    assert rows[1]["middle_name"] is None
    assert history.position == 0  # read_rows used a HistoryFile of its own


# --- text and Debezium forms ---------------------------------------------------------------------


@pytest.mark.parametrize(("declared", "text", "problem"), [
    ("bigint", "12abc", "not an integer"), ("integer", "1_000", "not an integer"),
    ("smallint", "40000", "out of range"), ("bigint", "9223372036854775808", "out of range"),
    ("numeric(14,2)", "1.005", "exactly"), ("numeric(14,2)", "NaN", "not a number"),
    ("numeric(14,2)", "1 234,50", "not a number"), ("numeric(4,2)", "123.4", "exactly"),
    ("double precision", "1e400", "out of range"), ("real", "1e39", "out of range"),
    ("boolean", "maybe", "not a boolean"),
    ("varchar(9)", "7511100001", "longer than 9"), ("char(1)", "MF", "longer than 1"), ("text", "a\x00b", "NUL"),
    ("date", "2024-02-30", "not a calendar date"), ("date", "2024/01/01", "not a date"), ("date", "20240101", "not a date"),
    ("timestamptz", "2024-01-15 10:30:00", "without a UTC offset"),
    ("timestamp", "2024-01-15 10:30:00+05", "UTC offset given"), ("timestamp", "2024-01-15 25:30:00", "time of day"),
    ("timestamptz", "yesterday 10:30+05", "not a timestamp"),
    ("uuid", "a0eebc99-9c0b", "not a UUID"), ("json", '{"a": NaN}', "NaN"), ("jsonb", "{'a': 1}", "JSON"),
])
def test_from_text_refusals_name_the_problem_never_the_value(declared: str, text: str, problem: str) -> None:
    with pytest.raises(ValueRefused) as info:
        text_parser(declared)(text)
    assert problem in str(info.value)
    assert text.strip() not in str(info.value)


@pytest.mark.parametrize(("declared", "value", "problem"), [
    ("bigint", 1.5, "float"), ("bigint", True, "bool"), ("smallint", 40_000, "out of range"),
    ("date", datetime(2024, 1, 1, 10, 0), "not a date"), ("date", "2024-01-01", "str"),
    ("timestamptz", datetime(2024, 1, 1), "without a UTC offset"),
    ("timestamp", datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=5))), "other than 0"),
    ("numeric(14,2)", 1.005, "exactly"), ("text", 751110000, "int"), ("boolean", 1, "int"),
])
def test_to_debezium_refuses_wrong_python_types(declared: str, value, problem: str) -> None:
    with pytest.raises(ValueRefused, match=problem):
        encoder(declared)(value)


def test_typed_values_parquet_would_give() -> None:
    assert encoder("date")(datetime(2024, 1, 1)) == 19723  # pandas writes dates as midnight
    assert encoder("timestamp")(datetime(1970, 1, 1, 0, 0, 1)) == 1_000_000
    assert encoder("numeric(14,2)")(48500.5) == "48500.50"
    assert encoder("real")(1.100000023841858) == 1.1  # a float32 read as a double
    assert encoder("uuid")(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"


def test_every_supported_type_has_a_text_form() -> None:
    from model.types.postgresql import SUPPORTED

    for name in SUPPORTED:
        declared = name.replace("(p,s)", "(10,2)").replace("[(p)]", "").replace("(p)", "(3)").replace("(n)", "(5)")
        assert callable(text_parser(declared)) and callable(encoder(declared))


# --- route_row ------------------------------------------------------------------------------------


def debezium_person(**overrides) -> dict:
    row = {"person_id": 42, "iin": IIN, "last_name": "Сидорова", "first_name": "Мария", "middle_name": "Ивановна",
           "birth_date": 5479, "sex": "F", "phone": "+7 701 234 56 78", "address": ROWS[0][8],
           "kato_code": "751110000", "status": "active", "updated_at": "2024-01-15T16:30:00.123456+06:00"}
    row.update(overrides)
    return row


def event(row: dict, table: str = "population.persons", lsn: int = 0) -> bytes:
    schema, name = table.split(".")
    return json.dumps({"before": None, "after": row, "op": "r", "ts_ms": SOURCE_TS + 5,
                       "source": {"lsn": lsn, "ts_ms": SOURCE_TS, "schema": schema, "table": name}},
                      ensure_ascii=False).encode()


def text_person(**overrides) -> dict:
    row = dict(zip(HEADER, ROWS[0]))
    row.update(overrides)
    return row


def typed_person(**overrides) -> dict:
    row = {"person_id": 42, "iin": IIN, "last_name": "Сидорова", "first_name": "Мария", "middle_name": "Ивановна",
           "birth_date": date(1985, 1, 1), "sex": "F", "phone": "+7 701 234 56 78", "address": ROWS[0][8],
           "kato_code": "751110000", "status": "active",
           "updated_at": datetime(2024, 1, 15, 10, 30, 0, 123456, tzinfo=UTC)}
    row.update(overrides)
    return row


@pytest.mark.parametrize("form", ["text", "typed"])
def test_route_row_gives_the_record_route_gives(router, codec, demo, ring, form: str) -> None:
    table = demo.table("population.persons")
    row = text_person() if form == "text" else typed_person()
    out = router.route_row(demo, table, row, version=HISTORY_VERSION, source_ts_ms=SOURCE_TS,
                           origin="history:p.csv", offset=1)
    reference = router.route(PERSONS_RAW, 0, 7, event(debezium_person()))
    assert (out.topic, out.key, out.outcome, out.op, out.defects, out.source_ts_ms) == \
           (reference.topic, reference.key, "clean", "r", (), SOURCE_TS)
    record, expected = clean(codec, out), clean(codec, reference)
    assert expected.pop("_version") == raw_event_version(7)  # a CDC change: its raw offset
    assert {k: v for k, v in record.items() if k != "_version"} == expected
    assert record["iin_hash"] == pseudonym(ring.subkey("iin"), IIN.encode())
    assert (record["_op"], record["_version"], record["birth_date_year"]) == ("r", 0, 1985)
    assert record["updated_at"] == datetime(2024, 1, 15, 10, 30, 0, 123456, tzinfo=UTC)


def test_route_row_payments_numeric_date_and_timestamps(router, codec, demo) -> None:
    table = demo.table("social.payments")
    base = {"payment_id": 9001, "person_iin": IIN, "org_bin": "071240500401", "payment_type": "pension",
            "status": "paid", "kato_code": "751110000"}
    text = {**base, "payment_id": "9001", "amount": "48500,5", "period": "01.01.2024",
            "paid_at": "2024-01-20 09:00:00+05", "updated_at": "2024-01-20T04:00:00Z"}
    typed = {**base, "amount": Decimal("48500.50"), "period": date(2024, 1, 1),
             "paid_at": datetime(2024, 1, 20, 4, tzinfo=UTC), "updated_at": datetime(2024, 1, 20, 4, tzinfo=UTC)}
    debezium = {**base, "amount": "48500.5", "period": 19723, "paid_at": "2024-01-20T04:00:00Z",
                "updated_at": "2024-01-20T04:00:00Z"}
    reference = clean(codec, router.route(PAYMENTS_RAW, 0, 1, event(debezium, "social.payments")))
    for row in (text, typed):
        out = router.route_row(demo, table, row, version=0, source_ts_ms=SOURCE_TS, origin="history:x", offset=1)
        assert out.outcome == "clean", out.reason
        assert clean(codec, out) == {**reference, "_version": 0}
    assert str(reference["amount"]) == "48500.50"


def test_route_row_matches_csv_and_parquet(tmp_path, router, codec, demo) -> None:
    table = demo.table("population.persons")
    (tmp_path / "p.csv").write_bytes(csv_text(";").encode("cp1251"))
    persons_parquet(tmp_path / "p.parquet")
    records = []
    for name in ("p.csv", "p.parquet"):
        outs = [router.route_row(demo, table, row, version=0, source_ts_ms=SOURCE_TS, origin=f"history:{name}",
                                 offset=n) for n, row in enumerate(read_rows(tmp_path / name), 1)]
        assert [o.outcome for o in outs] == ["clean", "clean"]
        records.append([clean(codec, o) for o in outs])
    assert records[0] == records[1]
    assert records[0][1]["phone_hash"] is None and records[0][1]["kato_code_region"] is None


def test_undeclared_columns_are_noted_by_name(router, codec, demo) -> None:
    out = router.route_row(demo, demo.table("population.persons"), text_person(nationality="казах"),
                           version=0, source_ts_ms=SOURCE_TS, origin="history:p.csv", offset=1)
    assert out.defects == ("nationality: not declared in the regulation, not loaded",)
    assert "казах" not in json.dumps(clean(codec, out), default=str, ensure_ascii=False)


def quarantine_record(codec, out) -> dict:
    assert (out.topic, out.outcome) == (QUARANTINE_TOPIC, "quarantined")
    name, record = codec.decode(out.value)
    blob = out.value.decode("utf-8", "replace") + json.dumps(record, default=str, ensure_ascii=False) + out.reason
    for clear in CLEAR:
        assert clear not in blob, clear
    return record


def test_missing_mandatory_column_is_quarantined(router, codec, demo, ring) -> None:
    out = router.route_row(demo, demo.table("population.persons"), text_person(sex=None),
                           version=0, source_ts_ms=SOURCE_TS, origin="history:p.csv", offset=17)
    record = quarantine_record(codec, out)
    assert (record["error_kind"], record["reason"]) == ("missing_value", "mandatory column(s) empty: sex")
    assert (record["source_topic"], record["source_partition"], record["source_offset"]) == ("history:p.csv", 0, 17)
    assert out.key == b"history:p.csv:0:17"
    salvaged = json.loads(record["payload_depersonalized"])
    assert salvaged["iin_hash"] == pseudonym(ring.subkey("iin"), IIN.encode())
    assert "last_name" not in salvaged


def test_mandatory_column_absent_from_the_row(router, codec, demo) -> None:
    row = text_person()
    del row["status"]
    out = router.route_row(demo, demo.table("population.persons"), row, version=0, source_ts_ms=SOURCE_TS,
                           origin="history:p.csv", offset=2)
    assert quarantine_record(codec, out)["reason"] == "mandatory column(s) empty: status"


def test_unreadable_values_are_bad_value_with_reasons(router, codec, demo) -> None:
    out = router.route_row(demo, demo.table("population.persons"),
                           text_person(birth_date="1985-13-01", updated_at="2024-01-15 10:30:00", kato_code="7511100001"),
                           version=0, source_ts_ms=SOURCE_TS, origin="history:p.csv", offset=3)
    record = quarantine_record(codec, out)
    assert record["error_kind"] == "bad_value"
    assert record["reason"] == ("column birth_date (date): not a calendar date; "
                                "column kato_code (varchar(9)): longer than 9 characters; "
                                "column updated_at (timestamptz): timestamptz without a UTC offset")
    salvaged = json.loads(record["payload_depersonalized"])
    assert "birth_date_year" not in salvaged and "updated_at" not in salvaged and salvaged["person_id"] == 42


def test_missing_value_wins_over_bad_value_as_in_route(router, codec, demo) -> None:
    out = router.route_row(demo, demo.table("population.persons"), text_person(sex=None, birth_date="x"),
                           version=0, source_ts_ms=SOURCE_TS, origin="history:p.csv", offset=4)
    assert quarantine_record(codec, out)["error_kind"] == "missing_value"


def test_dropped_columns_are_never_parsed(router, demo) -> None:
    out = router.route_row(demo, demo.table("population.persons"), text_person(address="a\x00b"),
                           version=0, source_ts_ms=SOURCE_TS, origin="history:p.csv", offset=5)
    assert out.outcome == "clean"


def test_route_row_needs_a_known_table(router, demo) -> None:
    other = demo.model_copy(update={"provider": "other"})
    with pytest.raises(ValueError, match="not built with"):
        router.route_row(other, other.table("population.persons"), text_person(), version=0,
                         source_ts_ms=SOURCE_TS, origin="history:p.csv")


# --- load_history -------------------------------------------------------------------------------


def test_load_history_routes_and_summarizes(tmp_path, unit_settings, codec, master_key) -> None:
    rows = [list(ROWS[0]), list(ROWS[1])]
    for i in range(3):  # missing sex
        rows.append([str(100 + i)] + ROWS[0][1:6] + [""] + ROWS[0][7:])
    rows.append(["200"] + ROWS[0][1:5] + ["31.02.1985"] + ROWS[0][6:])      # bad date
    rows.append(["201", "850101300125"] + ROWS[0][2:])                      # IIN fails its check digit
    rows.append(["202", IIN, "Сидорова"])                                   # wrong field count
    path = tmp_path / "persons.csv"
    # An undeclared column, empty in every row; each line ends with its (empty) field.
    path.write_bytes(csv_text(";", rows=rows, header=HEADER + ["nationality"]).replace("\r\n", ";\r\n")
                     .encode("cp1251"))
    producer = FakeProducer()
    summary = load_history(unit_settings, "demo", "population.persons", path, progress=False, producer=producer)
    assert (summary.rows_read, summary.loaded, summary.quarantined_rows) == (8, 3, 5)
    assert summary.quarantined == {"missing_value": 3, "bad_value": 1, "undecodable": 1}
    assert summary.defects["iin: not a valid iin"] == 1
    assert summary.defects["nationality: not declared in the regulation, not loaded"] == 3
    assert (summary.encoding, summary.delimiter) == ("cp1251", ";")
    assert any("nationality" in w for w in summary.warnings)
    topics = [topic for topic, _, _ in producer.sent]
    assert topics.count(PERSONS_CLEAN) == 3 and topics.count(QUARANTINE_TOPIC) == 5
    offsets = sorted(codec.decode(v)[1]["source_offset"] for t, _, v in producer.sent if t == QUARANTINE_TOPIC)
    assert offsets == [3, 4, 5, 6, 8]
    for topic, key, value in producer.sent:
        blob = (key or b"").decode() + value.decode("utf-8", "replace") + json.dumps(
            codec.decode(value)[1], default=str, ensure_ascii=False)
        assert not any(clear in blob for clear in CLEAR), topic
    text = summary.render()
    for expected in ("rows read", "loaded (clean)", "quarantined", "missing_value", "mandatory column(s) empty: sex",
                     "bad_value", "undecodable", "rows/s"):
        assert expected in text
    everything = text + "\n".join(summary.warnings) + repr(summary)
    for clear in CLEAR + ["31.02.1985", "850101300125"]:
        assert clear not in everything, clear


def test_load_history_parquet(tmp_path, unit_settings, master_key) -> None:
    path = tmp_path / "persons.parquet"
    persons_parquet(path)
    summary = load_history(unit_settings, "demo", "population.persons", path, progress=False,
                           producer=FakeProducer())
    assert (summary.format, summary.rows_read, summary.loaded, summary.quarantined_rows) == ("parquet", 2, 2, 0)
    assert "PARQUET" in summary.render()


def test_header_missing_the_key_is_refused(tmp_path, unit_settings, master_key) -> None:
    path = tmp_path / "nokey.csv"
    path.write_text(";".join(HEADER[1:]) + "\n" + ";".join(ROWS[0][1:]).replace("; кв.", ", кв.") + "\n",
                    encoding="utf-8")
    with pytest.raises(HistoryError, match="lacks the primary key column.s. person_id"):
        load_history(unit_settings, "demo", "population.persons", path, progress=False, producer=FakeProducer())


@pytest.mark.parametrize("first", [ROWS[0], ROWS[1]], ids=["all-fields", "empty-fields"])
def test_file_without_header_is_refused_without_quoting_its_first_row(tmp_path, unit_settings, master_key,
                                                                      first) -> None:
    path = tmp_path / "noheader.csv"
    path.write_text(csv_text(";", rows=[ROWS[1]], header=first), encoding="utf-8")
    with pytest.raises(HistoryError, match="the first line must be a header") as info:
        load_history(unit_settings, "demo", "population.persons", path, progress=False, producer=FakeProducer())
    assert not any(clear in str(info.value) for clear in CLEAR)


def test_warnings_quote_only_identifier_like_names(tmp_path, unit_settings, master_key) -> None:
    path = tmp_path / "odd.csv"
    path.write_text(";".join(HEADER + ["notes", "Ёлкин Пётр"]) + "\n", encoding="utf-8")
    summary = load_history(unit_settings, "demo", "population.persons", path, progress=False,
                           producer=FakeProducer())
    assert summary.rows_read == 0
    assert "notes and 1 unnamed or oddly named" in summary.warnings[0]
    assert "Ёлкин" not in "".join(summary.warnings)


def test_absent_mandatory_column_is_warned(tmp_path, unit_settings, master_key) -> None:
    path = tmp_path / "nosex.csv"
    path.write_text(";".join(h for h in HEADER if h != "sex") + "\n", encoding="utf-8")
    summary = load_history(unit_settings, "demo", "population.persons", path, progress=False,
                           producer=FakeProducer())
    assert any("mandatory column(s) sex absent" in w for w in summary.warnings)


@pytest.mark.parametrize(("provider", "table", "message"), [
    ("nobody", "population.persons", "no regulation for provider 'nobody'; known: demo"),
    ("demo", "population.pets", "declares no table 'population.pets'"),
])
def test_unknown_provider_or_table(tmp_path, unit_settings, provider, table, message) -> None:
    with pytest.raises(HistoryError, match=message):
        load_history(unit_settings, provider, table, tmp_path / "x.csv", progress=False, producer=FakeProducer())


def test_failed_delivery_fails_loudly(tmp_path, unit_settings, master_key) -> None:
    path = tmp_path / "p.csv"
    path.write_text(csv_text(","), encoding="utf-8")
    # The file's two rows and the access event of reading them (PD236).
    with pytest.raises(HistoryError, match="3 of 3 message.s. were not delivered"):
        load_history(unit_settings, "demo", "population.persons", path, progress=False,
                     producer=FakeProducer(fail=True))


def test_cli_errors_exit_with_a_message(tmp_path, monkeypatch) -> None:
    import streams.history_load as history_load
    from qoima.cli import main

    monkeypatch.setenv("QOIMA_HOME", str(tmp_path))
    calls = []
    with monkeypatch.context() as patched:
        patched.setattr(history_load, "load_history", lambda settings, provider, table, path, progress: calls.append(
            (provider, table, str(path), progress)) or SimpleNamespace(render=lambda: "loaded"))
        main(["load-history", "demo", "population.persons", "f.csv", "--no-progress"])
    assert calls == [("demo", "population.persons", "f.csv", False)]
    with pytest.raises(SystemExit, match="qoima load-history: cannot read"):
        main(["load-history", "demo", "population.persons", str(tmp_path / "nope.csv")])
    with pytest.raises(SystemExit, match="no regulation for provider 'x'"):
        main(["load-history", "x", "population.persons", str(tmp_path / "nope.csv")])
