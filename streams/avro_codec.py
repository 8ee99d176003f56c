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
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from connectors.regulation import Regulation, Table

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas" / "avro"
_MAGIC = b"\xc3\x01"


def load_avsc(name: str) -> dict:
    return json.loads((SCHEMA_DIR / f"{name}.avsc").read_text(encoding="utf-8"))


def _nullable(avro_type: Any) -> list:
    return ["null", avro_type]


def clean_schema(regulation: Regulation, table: Table) -> dict:
    """The Avro schema of a table's clean records: its surviving columns, then CleanMeta."""
    fields = []
    for column in table.columns:
        output = column.output_name
        if output is None:
            continue
        avro_type = column.output_types[0]
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


class AvroCodec:
    def __init__(self, schemas: dict[str, dict]) -> None:
        self._by_name: dict[str, tuple[bytes, Any]] = {}
        self._by_fingerprint: dict[bytes, tuple[str, Any]] = {}
        for name, schema in schemas.items():
            parsed = fastavro.parse_schema(schema)
            # fastavro gives the CRC-64-AVRO fingerprint already in the little-endian byte order
            # the single-object encoding prescribes.
            fp = bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))
            self._by_name[name] = (_MAGIC + fp, parsed)
            # Held topics share their clean twin's schema; a fingerprint names the clean one.
            self._by_fingerprint.setdefault(fp, (name, parsed))

    def encode(self, name: str, record: dict[str, Any]) -> bytes:
        header, parsed = self._by_name[name]
        buffer = io.BytesIO()
        buffer.write(header)
        fastavro.schemaless_writer(buffer, parsed, record)
        return buffer.getvalue()

    def decode(self, payload: bytes) -> tuple[str, dict[str, Any]]:
        if len(payload) < 10 or payload[:2] != _MAGIC:
            raise ValueError("not an Avro single-object message (bad magic bytes)")
        entry = self._by_fingerprint.get(payload[2:10])
        if entry is None:
            raise ValueError(f"unknown schema fingerprint {payload[2:10].hex()}: the regulation this "
                             "message was written with differs from the one loaded here")
        name, parsed = entry
        return name, fastavro.schemaless_reader(io.BytesIO(payload[10:]), parsed, parsed)


QUARANTINE_TOPIC = "qoima.quarantine"
INCIDENT_TOPIC = "qoima.incidents"


def codec_for(regulations: list[Regulation]) -> AvroCodec:
    """Every topic Qoima writes Avro to: clean topics, quarantine, incidents."""
    schemas = {QUARANTINE_TOPIC: load_avsc("quarantine"), INCIDENT_TOPIC: load_avsc("incident")}
    for regulation in regulations:
        for table in regulation.tables:
            schemas[regulation.clean_topic(table)] = schema = clean_schema(regulation, table)
            schemas[regulation.held_topic(table)] = schema
    return AvroCodec(schemas)


