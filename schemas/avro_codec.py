"""Avro for clean and quarantine topics, in Avro's single-object encoding.

Each message is 0xC3 0x01, the schema's CRC-64-AVRO fingerprint (8 bytes, little-endian),
then the Avro binary body, as the Avro specification defines it. Producer and consumer both
derive the schemas from the same regulation files and `schemas/avro/`, so a fingerprint
identifies the schema without a registry round-trip; a message whose fingerprint is unknown
is refused with an error that says which schema version is missing. See docs/decisions.md
for why no schema registry runs in the local stack.
"""
from __future__ import annotations

import io
import json
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from model.regulation import Regulation, Table
from schemas.avro_writer import compile_writer
from model.names import ACCESS_TOPIC, INCIDENT_TOPIC, QUARANTINE_TOPIC  # noqa: F401 (the topics these schemas travel on)

SCHEMA_DIR = Path(__file__).resolve().parent / "avro"
_MAGIC = b"\xc3\x01"


def load_avsc(name: str) -> dict:
    return json.loads((SCHEMA_DIR / f"{name}.avsc").read_text(encoding="utf-8"))


def _nullable(avro_type: Any) -> list:
    return ["null", avro_type]


def _defined_once(avro_type: Any, defined: set[str]) -> Any:
    """A named type (the interval record) defined at its first use and referenced by its full name
    after that: Avro refuses a second definition, and two interval columns share one."""
    if isinstance(avro_type, dict) and avro_type.get("type") in ("record", "enum", "fixed"):
        name = ".".join(filter(None, (avro_type.get("namespace"), avro_type["name"])))
        if name in defined:
            return name
        defined.add(name)
    return avro_type


def clean_schema(regulation: Regulation, table: Table) -> dict:
    """The Avro schema of a table's clean records: its surviving columns, then CleanMeta."""
    fields = []
    defined: set[str] = set()
    for column in table.columns:
        output = column.output_name
        if output is None:
            continue
        avro_type = _defined_once(column.output_types[0], defined)
        # Deletes carry only the key, so every non-key column may be null in a clean record.
        nullable = column.name not in table.primary_key
        fields.append({"name": output, "type": _nullable(avro_type) if nullable else avro_type,
                       **({"default": None} if nullable else {})})
    meta = load_avsc("clean_meta")
    return {
        "type": "record",
        "name": f"{table.schema_name}_{table.table_name}",
        "namespace": f"qoima.clean.{regulation.provider}",
        "doc": table.description or f"Clean records of {regulation.provider}.{table.name}",
        "fields": fields + meta["fields"],
    }


_ZEROS = {"long": 0, "int": 0, "float": 0.0, "double": 0.0, "boolean": False, "string": "", "bytes": b""}
_LOGICAL_ZEROS = {"date": date(1970, 1, 1), "timestamp-micros": datetime(1970, 1, 1, tzinfo=timezone.utc),
                  "timestamp-millis": datetime(1970, 1, 1, tzinfo=timezone.utc), "decimal": Decimal(0),
                  "uuid": "00000000-0000-0000-0000-000000000000"}


def zero_value(avro_type: Any) -> Any:
    """A value of `avro_type` that means nothing (0, '', 1970-01-01): what a record that is not a
    row, such as a truncate marker, puts in the fields the schema does not let be null."""
    if isinstance(avro_type, list):
        return None if "null" in avro_type else zero_value(avro_type[0])
    if isinstance(avro_type, dict):
        logical = avro_type.get("logicalType")
        if logical in _LOGICAL_ZEROS:
            return _LOGICAL_ZEROS[logical]
        if avro_type.get("type") == "record":
            return {f["name"]: zero_value(f["type"]) for f in avro_type["fields"]}
        if avro_type.get("type") == "array":
            return []
        if avro_type.get("type") == "enum":
            return avro_type["symbols"][0]
        return zero_value(avro_type["type"])
    if avro_type in _ZEROS:
        return _ZEROS[avro_type]
    raise ValueError(f"no zero value for Avro type {avro_type!r}")


def _fingerprint(parsed: Any) -> bytes:
    # fastavro gives the CRC-64-AVRO fingerprint already in the little-endian byte order the
    # single-object encoding prescribes.
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))


class AvroCodec:
    def __init__(self, schemas: dict[str, dict],
                 history: Callable[[bytes], tuple[str, dict] | None] | None = None) -> None:
        """`history`: where to find the schema of a fingerprint written under an earlier
        regulation (schemas/schema_history.py); without it such a message is refused."""
        self._by_name: dict[str, tuple[bytes, Any]] = {}
        self._by_fingerprint: dict[bytes, tuple[str, Any]] = {}
        self._sources: dict[bytes, tuple[str, dict]] = {}
        self._history = history
        self._writers: dict[str, Callable[[bytes, dict], bytes]] = {}   # schemas/avro_writer.py
        for name, schema in schemas.items():
            parsed = fastavro.parse_schema(schema)
            fp = _fingerprint(parsed)
            self._by_name[name] = (_MAGIC + fp, parsed)
            writer = compile_writer(parsed)
            if writer is not None:
                self._writers[name] = writer
            # Held topics share their clean twin's schema; a fingerprint names the clean one.
            self._by_fingerprint.setdefault(fp, (name, parsed))
            self._sources.setdefault(fp, (name, schema))

    @property
    def topics(self) -> list[str]:
        """Every topic this codec writes."""
        return sorted(self._by_name)

    @property
    def schemas(self) -> dict[bytes, tuple[str, dict]]:
        """Fingerprint -> (topic, schema) of everything this codec writes."""
        return dict(self._sources)

    def _earlier(self, fp: bytes) -> tuple[str, Any] | None:
        found = self._history(fp) if self._history else None
        if found is None:
            return None
        name, schema = found
        parsed = fastavro.parse_schema(schema)
        if _fingerprint(parsed) != fp:
            return None  # not the schema it claims to be
        self._by_fingerprint[fp] = (name, parsed)
        return name, parsed

    def encode(self, name: str, record: dict[str, Any]) -> bytes:
        header, parsed = self._by_name[name]
        write = self._writers.get(name)
        if write is not None:
            try:
                return write(header, record)
            except Exception:  # noqa: BLE001 - a value not exactly of its type: fastavro converts or refuses it
                pass
        buffer = io.BytesIO()
        buffer.write(header)
        fastavro.schemaless_writer(buffer, parsed, record)
        return buffer.getvalue()

    def decode(self, payload: bytes) -> tuple[str, dict[str, Any]]:
        if len(payload) < 10 or payload[:2] != _MAGIC:
            raise ValueError("not an Avro single-object message (bad magic bytes)")
        entry = self._by_fingerprint.get(payload[2:10]) or self._earlier(payload[2:10])
        if entry is None:
            raise ValueError(f"unknown schema fingerprint {payload[2:10].hex()}: the regulation this "
                             "message was written with differs from the one loaded here")
        name, parsed = entry
        return name, fastavro.schemaless_reader(io.BytesIO(payload[10:]), parsed, parsed)




def codec_for(regulations: list[Regulation],
              history: Callable[[bytes], tuple[str, dict] | None] | None = None) -> AvroCodec:
    """Every topic Qoima writes Avro to: clean topics, quarantine, incidents."""
    schemas = {QUARANTINE_TOPIC: load_avsc("quarantine"), INCIDENT_TOPIC: load_avsc("incident"),
               ACCESS_TOPIC: load_avsc("access_event")}
    for regulation in regulations:
        for table in regulation.tables:
            schemas[regulation.clean_topic(table)] = schema = clean_schema(regulation, table)
            schemas[regulation.held_topic(table)] = schema
    return AvroCodec(schemas, history)


