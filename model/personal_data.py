"""What PD236's access protocol says about a read of personal data (docs/pd236.md).

Every batch of a regulated table Qoima reads from a source is an access to personal data when
the table holds any: the categories come from the regulation's column roles, never from the
values. An access event counts rows and (estimated) distinct subjects of one table, one capture
path and one interval; it never holds a value.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum

from model.identifiers import IdentifierKind
from model.regulation import Regulation, Table


class Category(str, Enum):
    """Categories of personal data, as the access protocol names them."""

    identifiers = "identifiers"              # IIN, passport, identity card
    names = "names"
    contacts = "contacts"                    # phone, e-mail
    quasi_identifiers = "quasi_identifiers"  # birth date, sex, region: identify in combination
    sensitive = "sensitive"


class AccessPath(str, Enum):
    """How Qoima read the rows: Debezium's stream, its snapshots, the marker poller, a file."""

    cdc = "cdc"
    snapshot = "snapshot"
    marker = "marker"
    history = "history"


# A BIN names a legal entity: not personal data.
_BY_KIND = {IdentifierKind.iin: Category.identifiers, IdentifierKind.passport: Category.identifiers,
            IdentifierKind.id_card: Category.identifiers, IdentifierKind.name: Category.names,
            IdentifierKind.phone: Category.contacts, IdentifierKind.email: Category.contacts}


def categories(table: Table) -> tuple[str, ...]:
    """The categories of personal data a table's rows carry, from its column roles; empty when
    none (the table's reads are then no access to personal data)."""
    found: set[Category] = set()
    for column in table.columns:
        if column.kind in _BY_KIND:
            found.add(_BY_KIND[column.kind])
        if column.quasi_identifier:
            found.add(Category.quasi_identifiers)
        if column.sensitive:
            found.add(Category.sensitive)
    return tuple(c.value for c in Category if c in found)


# Which column names the person a row is about, best first: a national identifier, then a document.
_SUBJECT_KINDS = (IdentifierKind.iin, IdentifierKind.passport, IdentifierKind.id_card)


def subject_column(table: Table) -> str | None:
    """The output column whose pseudonym names the person a row is about (PD236's subject): the
    table's first IIN column that reaches the warehouse, else a passport or identity card
    column; None when the table has none, and its rows' keys stand for subjects instead (a
    person's own row, as in a register of residents)."""
    for kind in _SUBJECT_KINDS:
        for column in table.columns:
            if column.kind is kind and column.output_name is not None:
                return column.output_name
    return None


def event_id(provider: str, table: str, path: str, scope: str, key_id: str, interval_start_ms: int) -> str:
    """The access event's id: the same bucket always gets the same id, so a re-sent event is a
    duplicate the state service can drop."""
    text = f"{provider}\n{table}\n{path}\n{scope}\n{key_id}\n{interval_start_ms}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class AccessEvent:
    event_id: str
    provider: str
    organization: str
    information_system: str
    table: str                  # the warehouse's schema.table
    path: str                   # AccessPath
    categories: tuple[str, ...]
    rows: int
    subjects: int               # distinct subjects (subject_column), estimated above SUBJECTS_K
    subjects_exact: bool
    legal_basis: str
    purpose: str
    key_id: str                 # the pseudonym key the rows were depersonalized with
    interval_start_ms: int
    interval_end_ms: int
    first_read_ms: int
    last_read_ms: int

    def record(self) -> dict:
        """The Avro record (schemas/avro/access_event.avsc)."""
        return {
            "event_id": self.event_id, "provider": self.provider, "organization": self.organization,
            "information_system": self.information_system, "table": self.table, "path": self.path,
            "categories": list(self.categories), "rows": self.rows, "subjects": self.subjects,
            "subjects_exact": self.subjects_exact, "legal_basis": self.legal_basis, "purpose": self.purpose,
            "key_id": self.key_id, "interval_start": self.interval_start_ms, "interval_end": self.interval_end_ms,
            "first_read": self.first_read_ms, "last_read": self.last_read_ms,
        }


@dataclass(frozen=True)
class TableAccess:
    """The per-table facts an access event repeats, computed once."""

    provider: str
    organization: str
    information_system: str
    table: str
    categories: tuple[str, ...]
    legal_basis: str
    purpose: str
    polled: bool


def table_access(regulations: list[Regulation]) -> dict[tuple[str, str], TableAccess]:
    """(provider, schema.table) -> the facts of each regulated table that holds personal data."""
    found: dict[tuple[str, str], TableAccess] = {}
    for regulation in regulations:
        declared = regulation.personal_data
        for table in regulation.tables:
            kinds = categories(table)
            if kinds:
                found[(regulation.provider, table.name)] = TableAccess(
                    regulation.provider, regulation.organization, regulation.information_system, table.name, kinds,
                    declared.legal_basis if declared else "", declared.purpose if declared else "",
                    regulation.polled)
    return found
