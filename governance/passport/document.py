"""A provider's data passport, built from its regulation and its source's live catalog.

Four parts (docs/passport.md):
- the general part, DM385 Appendix 1 §1: the regulation's `passport:` block, with what Qoima
  derives (update frequency and schedule from the capture mode);
- the life cycle, Appendix 1 §2, and the R394 Appendix 1 questionnaire (DBMS, DML kinds and
  minimum-load window from `source:`);
- the structure description, with exactly Appendix 1's columns (`STRUCTURE_COLUMNS`), one row
  per source column of each regulated table;
- the warehouse side: each warehouse column with what Qoima did to its source column, its
  quality rules and the table's retention.

`digest()` fingerprints it: a change in the regulation or at the source changes it, and the
catalog (governance/passport/catalog.py) keeps a new version.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from connectors.structure import SourceTable
from model.identifiers import IdentifierKind
from model.leak_scan import structural_kinds
from model.passport import Passport, derived_frequency, derived_schedule
from model.regulation import Action, Column, Regulation, Table

STRUCTURE_COLUMNS = ("id", "information_system_name", "bd_name", "schema_name", "table_name", "table_description",
                     "table_type", "column_id", "column_name", "column_type", "column_description",
                     "reference_tbl_clmn", "flk", "clmn_key_type", "teg")
WAREHOUSE_COLUMNS = ("warehouse_table", "warehouse_column", "warehouse_type", "source_table", "source_column",
                     "treatment", "quality_rules", "retention_days")
DBMS_NAMES = {"postgresql": "PostgreSQL", "mariadb": "MariaDB"}
# The semantic tags of `teg` (docs/passport.md, "Tags").
_PERSONAL = {IdentifierKind.iin, IdentifierKind.passport, IdentifierKind.id_card, IdentifierKind.name,
             IdentifierKind.phone, IdentifierKind.email}
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class PassportDocument:
    provider: str
    declared: bool                       # the regulation has a `passport:` block
    general: dict[str, Any]
    life_cycle: dict[str, Any]
    questionnaire: dict[str, Any]
    structure: list[dict[str, Any]] = field(default_factory=list)
    warehouse: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"provider": self.provider, "declared": self.declared, "general": self.general,
                "life_cycle": self.life_cycle, "questionnaire": self.questionnaire, "structure": self.structure,
                "warehouse": self.warehouse}

    def part_digest(self, *parts: str) -> str:
        document = self.as_json()
        text = json.dumps({part: document[part] for part in parts}, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def digest(self) -> str:
        return self.part_digest("general", "life_cycle", "questionnaire", "structure", "warehouse")

    @property
    def regulation_digest(self) -> str:
        return self.part_digest("general", "life_cycle", "questionnaire", "warehouse")

    @property
    def structure_digest(self) -> str:
        return self.part_digest("structure")


def general_part(regulation: Regulation) -> tuple[dict, dict, dict]:
    source = regulation.source
    passport: Passport | None = regulation.passport
    declared = passport.model_dump(mode="json") if passport is not None else {}   # enums and dates as text
    life_cycle, asked = declared.pop("life_cycle", {}), declared.pop("questionnaire", {})
    general: dict[str, Any] = {"organization": regulation.organization,
                               "information_system": regulation.information_system, **declared}
    general["update_frequency"] = derived_frequency(source.capture.value, source.refresh).value
    general["update_schedule"] = declared.get("update_schedule") or derived_schedule(
        source.capture.value, source.refresh, source.poll_seconds)
    questionnaire = {"dbms": DBMS_NAMES[source.dbms], "database": source.database, "dml": list(source.dml),
                     "min_load_window": source.min_load_window or "", "capture": source.capture.value, **asked}
    return general, life_cycle, questionnaire


WITHHELD = "(withheld: looks like it holds an identifier)"


def safe_text(text: str | None) -> str:
    """A comment, default or description as the catalog may keep it: analysts read the catalog,
    and a source comment such as "IIN, e.g. 880101300123" must not carry its example there."""
    return WITHHELD if text and structural_kinds(text) else (text or "")


def _tags(column: Column | None) -> str:
    if column is None:
        return "not_captured"
    tags = []
    if column.kind is not None:
        tags.append(f"identifier:{column.kind.value}")
        if column.kind in _PERSONAL:
            tags.append("personal")
    if column.quasi_identifier:
        tags.append("quasi_identifier")
    if column.sensitive:
        tags.append("sensitive")
    return "; ".join(tags)


def _references(regulation: Regulation, table: Table) -> dict[str, str]:
    """Column -> schema.table.column (source names) that an integrity rule says it refers to."""
    found = {}
    mine = {t.name: t for t in regulation.tables}
    for rule in table.rules:
        target = getattr(rule, "references", None)
        if target:
            schema_table, _, column = target.rpartition(".")
            referenced = mine.get(schema_table)
            # Another provider's table (cross-row rules may reach it): named as the rule names it.
            found[table.column(rule.column).source_column] = target if referenced is None else (
                f"{referenced.schema_name}.{referenced.table_name}.{referenced.column(column).source_column}")
    return found


def structure_rows(regulation: Regulation, table: Table, source: SourceTable | None, start: int) -> list[dict]:
    """One row per column: the source's catalog when it answered, else the regulation's declaration."""
    declared = {c.source_column: c for c in table.columns}
    references = _references(regulation, table)
    rows = []
    if source is not None:
        columns = [(c.position, c.name, c.type, c.not_null, c.default, c.max_length, c.comment)
                   for c in source.columns]
        key, foreign, comment = source.primary_key, source.foreign_keys, source.comment
    else:
        columns = [(n, c.source_column, c.type, not c.nullable, None, None, "") for n, c in
                   enumerate(table.columns, 1)]
        key, foreign, comment = [table.column(k).source_column for k in table.primary_key], {}, ""
    for position, name, declared_type, not_null, default, max_length, column_comment in columns:
        column = declared.get(name)
        flk = [part for part in ("NOT NULL" if not_null else "", f"DEFAULT {safe_text(default)}" if default else "",
                                 f"max length {max_length}" if max_length else "") if part]
        reference = foreign.get(name) or references.get(name, "")
        kinds = [kind for kind, yes in (("PK", name in key), ("FK", bool(reference))) if yes]
        rows.append({
            "id": start + len(rows), "information_system_name": regulation.information_system,
            "bd_name": DBMS_NAMES[regulation.source.dbms], "schema_name": table.schema_name,
            "table_name": table.table_name, "table_description": safe_text(table.description or comment),
            "table_type": table.table_type, "column_id": position, "column_name": name, "column_type": declared_type,
            "column_description": safe_text(column.description if column and column.description else column_comment),
            "reference_tbl_clmn": reference, "flk": "; ".join(flk), "clmn_key_type": ", ".join(kinds),
            "teg": _tags(column)})
    return rows


def _rule_columns(table: Table) -> dict[str, list[str]]:
    """Column -> names of the table's quality rules that read it."""
    names = {c.name for c in table.columns}
    found: dict[str, list[str]] = {}
    for rule in table.rules:
        columns: set[str] = set()
        for attribute in ("column", "columns", "match", "compare"):
            value = getattr(rule, attribute, None)
            if isinstance(value, str):
                columns.add(value)
            elif value:
                columns.update(value)
        expression = getattr(rule, "expression", None)
        if expression:
            columns.update(word for word in _WORD.findall(expression) if word in names)
        for column in columns & names:
            found.setdefault(column, []).append(rule.name)
    return found


def _treatment(column: Column, key_id: str) -> str:
    if column.action is Action.hash:
        return f"hashed ({column.kind.value}, key {key_id})"
    if column.action is Action.generalize:
        return f"generalized to {column.to.value}"
    return {Action.keep: "kept", Action.redact: "redacted", Action.drop: "dropped"}[column.action]


def warehouse_rows(regulation: Regulation, table: Table, key_id: str) -> list[dict]:
    rules = _rule_columns(table)
    rows = []
    for column in table.columns:
        output = column.output_name
        clickhouse = column.output_types[1] if output else ""
        rows.append({
            "warehouse_table": f"udw.{regulation.warehouse_table(table)}" if output else "",
            "warehouse_column": output or "",
            "warehouse_type": (f"Nullable({clickhouse})" if column.nullable else clickhouse) if output else "",
            "source_table": f"{table.schema_name}.{table.table_name}", "source_column": column.source_column,
            "treatment": _treatment(column, key_id), "quality_rules": ", ".join(sorted(rules.get(column.name, []))),
            "retention_days": table.retention_days or 0})
    return rows


def build(regulation: Regulation, sources: dict[str, SourceTable | None], key_id: str) -> PassportDocument:
    """The passport; `sources` maps each table's name to its catalog (None: not readable)."""
    general, life_cycle, questionnaire = general_part(regulation)
    document = PassportDocument(regulation.provider, regulation.passport is not None, general, life_cycle,
                                questionnaire)
    for table in regulation.tables:
        document.structure += structure_rows(regulation, table, sources.get(table.name), len(document.structure) + 1)
        document.warehouse += warehouse_rows(regulation, table, key_id)
    return document


def read_sources(regulation: Regulation, environ: dict[str, str]) -> dict[str, SourceTable | None]:
    """Each regulated table's catalog at the source, through the capture account."""
    from connectors.source_reader import connect_source
    from connectors.structure import read_structure

    conn = connect_source(regulation, environ, timeout_ms=30_000, application="qoima-passport", autocommit=True)
    try:
        return {t.name: read_structure(conn, regulation.source.dbms, t.schema_name, t.table_name)
                for t in regulation.tables}
    finally:
        conn.close()
