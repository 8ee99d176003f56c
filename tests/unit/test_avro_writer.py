"""The compiled Avro writers (schemas/avro_writer.py) against fastavro itself: for every schema
Qoima writes and any value, the same bytes, or the same refusal."""
from __future__ import annotations

import io
import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from schemas.avro_codec import codec_for
from schemas.avro_writer import compile_writer, write_long


def _fastavro(parsed: dict, record: dict) -> bytes | type:
    """fastavro's body of `record`, or the class of its refusal."""
    buffer = io.BytesIO()
    try:
        fastavro.schemaless_writer(buffer, parsed, record)
    except Exception as exc:  # noqa: BLE001 - the refusal itself is what is compared
        return type(exc)
    return buffer.getvalue()


_ANY = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20),
                 st.binary(max_size=10), st.lists(st.text(max_size=5), max_size=3),
                 st.datetimes(timezones=st.just(timezone.utc)), st.dates(),
                 st.decimals(allow_nan=False, allow_infinity=False, places=2))


def _values(avro_type) -> st.SearchStrategy:
    """Values of `avro_type`, edges included, and now and then a value of some other class."""
    if isinstance(avro_type, list):
        return st.one_of(st.none(), *(_values(branch) for branch in avro_type if branch != "null"))
    if isinstance(avro_type, dict):
        logical = avro_type.get("logicalType")
        if logical in ("timestamp-millis", "timestamp-micros"):
            own = st.one_of(st.datetimes(min_value=datetime(1, 1, 2), timezones=st.just(timezone.utc)),
                            st.integers(-(2 ** 63), 2 ** 63 - 1))
        elif logical == "date":
            own = st.one_of(st.dates(), st.integers(-(2 ** 31), 2 ** 31 - 1))
        elif logical == "decimal":
            scale = avro_type.get("scale", 0)
            own = st.decimals(allow_nan=False, allow_infinity=False, places=scale,
                              max_value=Decimal(10) ** (avro_type["precision"] - scale) - 1,
                              min_value=-(Decimal(10) ** (avro_type["precision"] - scale)) + 1)
        elif avro_type.get("type") == "array":
            own = st.lists(_values(avro_type["items"]), max_size=4)
        else:
            own = _values(avro_type["type"])
        return st.one_of(own, _ANY) if avro_type.get("type") != "array" else own
    own = {"long": st.integers(-(2 ** 63), 2 ** 63 - 1) | st.sampled_from([2 ** 63, -(2 ** 63) - 1, 2 ** 62 + 7]),
           "int": st.integers(-(2 ** 31), 2 ** 31 - 1) | st.sampled_from([2 ** 31, -(2 ** 31) - 1]),
           "string": st.text() | st.sampled_from(["\ud800", "Әлия\u200b", ""]),
           "bytes": st.binary(), "boolean": st.booleans(),
           "double": st.floats(), "float": st.floats(width=32)}.get(avro_type, st.nothing())
    return st.one_of(own, _ANY)


_CODECS: dict[int, object] = {}


def _codec(demo):
    return _CODECS.setdefault(id(demo), codec_for([demo]))


def _schemas(demo) -> dict[str, dict]:
    codec = _codec(demo)
    return {name: codec._by_name[name][1] for name in codec.topics}


def _named_types(avro_type) -> bool:
    if isinstance(avro_type, list):
        return any(_named_types(branch) for branch in avro_type)
    if isinstance(avro_type, dict):
        return avro_type.get("type") in ("enum", "record", "fixed") or _named_types(avro_type.get("items"))
    return False


def test_every_clean_schema_is_compiled_and_only_schemas_with_named_types_are_left_to_fastavro(demo):
    schemas = _schemas(demo)
    skipped = {name for name, parsed in schemas.items() if compile_writer(parsed) is None}
    # The type-samples table holds an interval (a named record) and an enum; quarantine,
    # incident and access events have enums. All of them are written by fastavro.
    assert skipped == {name for name, parsed in schemas.items()
                       if any(_named_types(field["type"]) for field in parsed["fields"])}
    assert {name for name in schemas if ".clean." in name and "type_samples" not in name} <= set(schemas) - skipped
    assert len(set(schemas) - skipped) >= 8


@pytest.mark.parametrize("value", [0, 1, -1, 63, -64, 64, -65, 127, 128, 8191, 8192, 2 ** 14, 2 ** 62 + 12345,
                                   2 ** 63 - 1, -(2 ** 63), 1796502656105])
def test_a_long_is_written_as_fastavro_writes_it(value):
    parsed = fastavro.parse_schema({"type": "record", "name": "n", "fields": [{"name": "v", "type": "long"}]})
    assert write_long(value) == _fastavro(parsed, {"v": value})


@pytest.mark.parametrize("value", [2 ** 63, -(2 ** 63) - 1])
def test_a_long_out_of_range_is_refused(value):
    with pytest.raises(OverflowError):
        write_long(value)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_record_is_written_byte_for_byte_as_fastavro_writes_it_or_refused_as_it_refuses(demo, data):
    codec = _codec(demo)
    seen: set[str] = set()
    for name, parsed in sorted(_schemas(demo).items()):
        write = codec._writers.get(name)
        shape = json.dumps([field["type"] for field in parsed["fields"]], sort_keys=True)
        if write is None or shape in seen:   # held topics share their clean twin's schema
            continue
        seen.add(shape)
        record = {field["name"]: data.draw(_values(field["type"]), label=field["name"]) for field in parsed["fields"]}
        expected = _fastavro(parsed, record)
        try:
            compiled = write(b"", record)
        except Exception:  # noqa: BLE001 - declining is allowed (fastavro writes it); a different body is not
            compiled = None
        if isinstance(expected, bytes):
            assert compiled is None or compiled == expected, name
            assert codec.encode(name, record)[10:] == expected
        else:
            assert compiled is None, name   # what fastavro refuses, the compiled writer must not write
            with pytest.raises(expected):
                codec.encode(name, record)


def test_a_clean_record_as_the_router_makes_it_is_written_by_the_compiled_writer(demo):
    parsed = _schemas(demo)["qoima.clean.demo.social.payments"]
    record = {"payment_id": 7, "person_iin_hash": "vonbfwfermmlm5d2ceq623geekxucu57pnjpsyjldow5wieyltbq",
              "org_bin_hash": None, "payment_type": "child_benefit", "amount": Decimal("26412.61"),
              "period": date(2025, 3, 1), "status": "paid",
              "paid_at": datetime(2025, 3, 2, 10, 0, 0, 123456, tzinfo=timezone.utc),
              "kato_code_region": "79", "updated_at": datetime(2026, 11, 23, tzinfo=timezone(timedelta(hours=5))),
              "_op": "u", "_version": 2 ** 62 + 981, "_is_deleted": 0, "_source_ts_ms": 1796502656105,
              "_processed_ts_ms": 1796502656145, "_key_id": "k1", "_defects": ["rule paid_has_date: x"],
              "_held_by": [], "_unchanged": ["paid_at"]}
    assert compile_writer(parsed)(b"", record) == _fastavro(parsed, record)
