"""The interaction regulation (R394 §3.15, §10-16) as a typed, validated model.

One YAML file per data provider declares the source, the tables Qoima captures and, per
column, what depersonalization does with it. Everything else (connector config, processor
rules, ClickHouse DDL, Avro schemas) is derived from this model, so a mistake here must be
caught on load with a message that names the field and says how to fix it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from model.load_window import LoadWindow
from model.passport import Accessibility, Passport, derived_frequency
from model import names, rules
from model.identifiers import IdentifierKind
# RuleAction and RuleKind are read with the regulation by the stages that act on rules.
from model.rules import Rule, RuleAction, RuleKind, validate_rules  # noqa: F401
from model.types import ColumnType, is_date_type, is_text_type, parse_type
from model.types.postgresql import parse_pg_type

_IDENT = r"^[a-z][a-z0-9_]{0,62}$"


def _source_identifier(value: str | None, what: str) -> str | None:
    """A name as the source spells it (any case, script, spaces, dots, quotes), or None."""
    if value is None:
        return None
    if not value.strip():
        raise ValueError(f"{what} is empty; give the name exactly as the source spells it, or remove the field")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"{what} {value!r} holds a control character; no database names a table or column so")
    if "," in value:
        # Debezium's include lists are comma-separated regular expressions.
        raise ValueError(f"{what} {value!r} holds a comma, which Debezium's table include list cannot carry; "
                         "rename it at the source or capture a view of it under another name")
    return value


_INTERPOLATION = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}")


class RegulationError(ValueError):
    """A regulation file cannot be used; the message names the file, the field and the fix."""


class _Model(BaseModel):
    # Unknown keys are typos far more often than features: refuse them.
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(_Model):
    """A secret given by reference. Exactly one of `file` or `env`; never the value itself."""

    file: str | None = None
    env: str | None = None

    @model_validator(mode="after")
    def _one_reference(self) -> "SecretRef":
        if (self.file is None) == (self.env is None):
            raise ValueError("give exactly one of 'file: /path/to/secret' or 'env: VARIABLE_NAME'")
        return self

    def read(self, environ: dict[str, str]) -> str:
        if self.file is not None:
            path = Path(self.file)
            if not path.is_file():
                raise RegulationError(f"secret file {path} does not exist; create it (mode 0600) or fix source.password.file")
            return path.read_text(encoding="utf-8").strip()
        value = environ.get(self.env or "")
        if not value:
            raise RegulationError(f"environment variable {self.env} is not set; export it or fix source.password.env")
        return value


class Capture(str, Enum):
    cdc = "cdc"
    marker = "marker"


Dbms = Literal["postgresql", "mariadb"]


class Source(_Model):
    dbms: Dbms
    host: str
    port: int = Field(ge=1, le=65535)
    database: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    user: str
    password: SecretRef
    capture: Capture = Capture.cdc
    snapshot: Literal["initial", "no_data", "never", "when_needed", "always"] = "initial"
    min_load_window: str | None = Field(default=None, pattern=r"^\d\d:\d\d-\d\d:\d\d$")
    timezone: str = "Asia/Almaty"   # of min_load_window (model/load_window.py)
    refresh: Literal["continuous", "hourly", "daily", "monthly"] = "continuous"
    dml: list[Literal["insert", "update", "delete"]] = ["insert", "update", "delete"]
    heartbeat_seconds: int = Field(default=10, ge=1, le=3600)
    # Marker mode (capture: marker, DM385 §63; connectors/marker/, docs/regulation.md).
    poll_seconds: int = Field(default=5, ge=1, le=86400)
    poll_batch_rows: int = Field(default=1000, ge=1, le=100_000)
    lookback_seconds: int = Field(default=60, ge=0, le=86400)       # timestamp markers
    lookback_values: int = Field(default=1000, ge=0)                 # integer markers
    safety_lag_seconds: int = Field(default=0, ge=0, le=3600)       # timestamp markers
    reconcile_every: int = Field(default=0, ge=0, le=1_000_000)     # polls between key reconciliations; 0 = off
    # MariaDB only: the replica id Debezium reads the binlog under (database.server.id). Unique
    # among the server's replicas and unlike the server's own server_id, or they cut each other off.
    server_id: int | None = Field(default=None, ge=1, le=4_294_967_295)

    @model_validator(mode="after")
    def _dbms_fields(self) -> "Source":
        if self.dbms == "mariadb":
            if self.server_id is None:
                raise ValueError("dbms 'mariadb' needs 'server_id: <1..4294967295>', the replica id Debezium reads "
                                 "the binlog under; pick one no other replica of that server uses")
            if self.capture is Capture.marker:
                # The poller reads through psycopg and connectors/pg_text: PostgreSQL only for now.
                raise ValueError("capture 'marker' is PostgreSQL-only for now; use capture 'cdc' for MariaDB "
                                 "(it needs the binlog: docs/mariadb.md)")
        elif self.server_id is not None:
            raise ValueError("server_id applies to dbms 'mariadb' only; remove it")
        return self

    @property
    def load_window(self) -> LoadWindow | None:
        return LoadWindow.parse(self.min_load_window, self.timezone) if self.min_load_window else None

    @model_validator(mode="after")
    def _window(self) -> "Source":
        try:
            self.load_window  # noqa: B018 - parsed for its errors
        except ZoneInfoNotFoundError:
            raise ValueError(f"timezone {self.timezone!r} is not a known time zone; use an IANA name such as "
                             "Asia/Almaty") from None
        return self

    @model_validator(mode="after")
    def _capture_fields(self) -> "Source":
        # A field of the other mode would be silently ignored; say so instead.
        given = self.model_fields_set
        if self.capture is Capture.marker:
            wrong, why = given & _CDC_ONLY, ("applies to capture 'cdc' (Debezium) only; marker mode always reads "
                                             "the whole table first and needs no heartbeat")
        else:
            wrong, why = given & _MARKER_ONLY, "applies to capture 'marker' only"
        if wrong:
            raise ValueError(f"{', '.join(sorted(wrong))}: {why}; remove it")
        return self


_CDC_ONLY = frozenset({"snapshot", "heartbeat_seconds"})
_MARKER_ONLY = frozenset({"poll_seconds", "poll_batch_rows", "lookback_seconds", "lookback_values",
                          "safety_lag_seconds", "reconcile_every"})


class Action(str, Enum):
    keep = "keep"
    hash = "hash"
    drop = "drop"
    generalize = "generalize"
    redact = "redact"


class Generalization(str, Enum):
    year = "year"
    age_band = "age_band"
    kato_region = "kato_region"
    address_region = "address_region"
    postcode_region = "postcode_region"


@dataclass(frozen=True)
class ActionOutput:
    """What a depersonalizing action writes: the column-name suffix and its Avro and ClickHouse types."""

    suffix: str
    avro: str
    clickhouse: str


# One table for the processor's column names, the Avro schemas and the warehouse DDL, so that
# they cannot disagree. Regions and age bands repeat a few values: LowCardinality stores them
# as a dictionary.
_HASHED = ActionOutput("hash", "string", "String")
_REDACTED = ActionOutput("redacted", "string", "String")
_GENERALIZED = {
    Generalization.year: ActionOutput("year", "int", "UInt16"),
    Generalization.age_band: ActionOutput("age_band", "string", "LowCardinality(String)"),
    Generalization.kato_region: ActionOutput("region", "string", "LowCardinality(String)"),
    Generalization.address_region: ActionOutput("region", "string", "LowCardinality(String)"),
    Generalization.postcode_region: ActionOutput("region", "string", "LowCardinality(String)"),
}
_DATE_GENERALIZATIONS = {Generalization.year, Generalization.age_band}
class Column(_Model):
    # The warehouse's name for the column; the source's own when that needs quoting (upper case,
    # Cyrillic, spaces, dots, quotes) is `source_name` (docs/regulation.md, "Names").
    name: str = Field(pattern=_IDENT)
    source_name: str | None = None
    # The dbms whose language `type` is written in. Not written in YAML: the regulation copies
    # source.dbms into every column (Regulation._columns_take_source_dbms) before they are read.
    dbms: Dbms = Field(default="postgresql", exclude=True, repr=False)
    type: str
    nullable: bool = True
    description: str = ""
    action: Action = Action.keep
    # What the column holds. Required to hash; on a dropped column it tells the
    # depersonalization check which source values must never appear downstream.
    kind: IdentifierKind | None = None
    to: Generalization | None = None
    quasi_identifier: bool = False   # with the table's other quasi-identifiers, defines k-anonymity classes
    sensitive: bool = False          # the attribute whose diversity within a class l-diversity measures

    @field_validator("source_name")
    @classmethod
    def _source_name(cls, value: str | None) -> str | None:
        return _source_identifier(value, "source_name")

    @property
    def source_column(self) -> str:
        """The column's name at the source, exactly."""
        return self.source_name or self.name

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str, info) -> str:
        parse_type(value, info.data.get("dbms", "postgresql"))  # raises ValueError naming the supported types
        return value

    @model_validator(mode="after")
    def _action_arguments(self) -> "Column":
        if self.action is Action.hash and self.kind is None:
            raise ValueError(f"column {self.name}: action 'hash' needs 'kind' (one of {', '.join(k.value for k in IdentifierKind)})")
        if self.action is Action.generalize and self.to is None:
            raise ValueError(f"column {self.name}: action 'generalize' needs 'to' (one of {', '.join(g.value for g in Generalization)})")
        if self.action not in (Action.hash, Action.drop) and self.kind is not None:
            raise ValueError(f"column {self.name}: 'kind' applies to actions 'hash' and 'drop' only")
        if (self.quasi_identifier or self.sensitive) and self.action is Action.drop:
            raise ValueError(f"column {self.name}: a dropped column cannot be a quasi-identifier or sensitive "
                             "attribute (it is not in the warehouse); remove the flag or keep/generalize it")
        if self.action is not Action.generalize and self.to is not None:
            raise ValueError(f"column {self.name}: 'to' only applies to action 'generalize'")
        if self.action is Action.redact and not is_text_type(self.type, self.dbms):
            raise ValueError(f"column {self.name}: action 'redact' needs a text column (text, varchar(n), char(n)), "
                             f"not {self.type!r}; use 'hash' or 'drop' for other types")
        if self.to in _DATE_GENERALIZATIONS and not is_date_type(self.type, self.dbms):
            raise ValueError(f"column {self.name}: 'to: {self.to.value}' needs a date column (date, timestamp, "
                             f"timestamptz), not {self.type!r}; fix the type or choose another 'to'")
        if self.to is not None and self.to not in _DATE_GENERALIZATIONS and not is_text_type(self.type, self.dbms):
            raise ValueError(f"column {self.name}: 'to: {self.to.value}' needs a text column (text, varchar(n), "
                             f"char(n)), not {self.type!r}; fix the type or choose another 'to'")
        return self

    @property
    def output(self) -> ActionOutput | None:
        """What a depersonalizing action writes; None for 'keep' (the source type) and 'drop'."""
        if self.action is Action.hash:
            return _HASHED
        if self.action is Action.redact:
            return _REDACTED
        if self.action is Action.generalize:
            return _GENERALIZED[self.to]
        return None

    @property
    def output_name(self) -> str | None:
        """The column's name in clean topics and the warehouse; None when it is dropped."""
        if self.action is Action.drop:
            return None
        output = self.output
        return self.name if output is None else f"{self.name}_{output.suffix}"

    @property
    def output_types(self) -> tuple[Any, str]:
        """(Avro type, ClickHouse type without Nullable) of the output column; not for 'drop'."""
        output = self.output
        if output is not None:
            return output.avro, output.clickhouse
        source = self.source_type
        return source.avro, source.clickhouse

    @property
    def source_type(self) -> ColumnType:
        """The declared type read in its source's language: its family, Avro and ClickHouse types."""
        return parse_type(self.type, self.dbms)


class Notify(_Model):
    """A webhook told of the table's incidents when they open and when they are resolved (DM385 §49)."""

    url: str
    name: str | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"notify url {value!r} must be an http:// or https:// URL with a host")
        return value


def marker_kind(declared: str) -> str | None:
    """'timestamp' or 'integer' for a type that can be a marker column (capture: marker), else None."""
    text = " ".join(declared.lower().split())
    if text.startswith("timestamp") and parse_pg_type(declared).clickhouse.startswith("DateTime64"):
        return "timestamp"
    if text in ("smallint", "int2", "integer", "int", "int4", "bigint", "int8"):
        return "integer"
    return None


class Table(_Model):
    # The warehouse's schema.table; the source's own names, when they need quoting, are
    # `source_schema` and `source_table` (docs/regulation.md, "Names").
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$", description="schema.table")
    source_schema: str | None = None
    source_table: str | None = None
    description: str = ""
    primary_key: list[str] = Field(min_length=1)
    retention_days: int | None = Field(default=None, ge=1)
    min_k: int = Field(default=5, ge=2, le=1000)   # k-anonymity threshold over the quasi-identifiers
    columns: list[Column] = Field(min_length=1)
    rules: list[Rule] = []   # data-quality rules (DM385 §35, §49), model/rules.py
    # The data passport's table type (DM385 Appendix 1 `table_type`): a main table or a lookup
    # (reference) table. The owner says which; nothing in a catalog tells them apart.
    table_type: Literal["main", "lookup"] = "main"
    notify: list[Notify] = []   # webhooks for its incidents, governance/notifier.py
    marker: str | None = None         # capture: marker only: the column polled for changes
    deleted_flag: str | None = None   # capture: marker only: a boolean column; true = deleted

    @model_validator(mode="after")
    def _marker_columns(self) -> "Table":
        if (self.marker or self.deleted_flag) and any(c.dbms != "postgresql" for c in self.columns):
            raise ValueError(f"table {self.name}: 'marker' and 'deleted_flag' (capture 'marker') are PostgreSQL-only "
                             "for now; remove them")
        by_name = {c.name: c for c in self.columns}
        if self.marker is not None:
            column = by_name.get(self.marker)
            if column is None:
                raise ValueError(f"table {self.name}: marker column {self.marker!r} is not among its columns; declare it")
            if marker_kind(column.type) is None:
                raise ValueError(f"table {self.name}: marker column {self.marker!r} is {column.type!r}; a marker must "
                                 "increase with every change: timestamptz, timestamp or an integer fed by a sequence")
            if column.nullable:
                raise ValueError(f"table {self.name}: marker column {self.marker!r} must be declared 'nullable: false' "
                                 "(a row without a marker is never polled)")
        if self.deleted_flag is not None:
            column = by_name.get(self.deleted_flag)
            if column is None:
                raise ValueError(f"table {self.name}: deleted_flag column {self.deleted_flag!r} is not among its "
                                 "columns; declare it")
            if parse_pg_type(column.type).clickhouse != "Bool":
                raise ValueError(f"table {self.name}: deleted_flag column {self.deleted_flag!r} must be boolean, "
                                 f"not {column.type!r}")
            if self.deleted_flag in self.primary_key or self.deleted_flag == self.marker:
                raise ValueError(f"table {self.name}: deleted_flag cannot be a primary key column or the marker")
        return self

    @field_validator("source_schema", "source_table")
    @classmethod
    def _source_names(cls, value: str | None, info) -> str | None:
        return _source_identifier(value, info.field_name)

    @model_validator(mode="after")
    def _consistent(self) -> "Table":
        for names, what in (([c.name for c in self.columns], "columns declared twice"),
                            ([c.source_column for c in self.columns], "source columns declared twice")):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"table {self.name}: {what}: {', '.join(duplicates)}")
        folded = [c.source_column.casefold() for c in self.columns]
        alike = sorted(c.source_column for c in self.columns if folded.count(c.source_column.casefold()) > 1)
        if alike:
            # Debezium's table model looks columns up without regard to case and keeps one of them.
            raise ValueError(f"table {self.name}: source columns {', '.join(alike)} differ only in case, and Debezium "
                             "captures one of them; rename one at the source, or declare only one")
        by_name = {c.name: c for c in self.columns}
        for key in self.primary_key:
            column = by_name.get(key)
            if column is None:
                raise ValueError(f"table {self.name}: primary key column {key!r} is not among its columns")
            if column.action is not Action.keep:
                # The key orders and deduplicates the warehouse table; a hashed key would do,
                # but drop or generalize would merge distinct rows.
                if column.action is not Action.hash:
                    raise ValueError(f"table {self.name}: primary key column {key!r} must be 'keep' or 'hash'")
            if column.nullable:
                raise ValueError(f"table {self.name}: primary key column {key!r} must be declared 'nullable: false'")
        if sum(c.sensitive for c in self.columns) > 1:
            raise ValueError(f"table {self.name}: declare at most one 'sensitive' column")
        return self

    @model_validator(mode="after")
    def _valid_rules(self) -> "Table":
        validate_rules(self)  # names unique, columns declared, checks fit the column types
        return self

    @property
    def schema_name(self) -> str:
        """The schema (MariaDB: the database) as the source spells it."""
        return self.source_schema or self.name.split(".", 1)[0]

    @property
    def table_name(self) -> str:
        """The table as the source spells it."""
        return self.source_table or self.name.split(".", 1)[1]

    @property
    def renamed(self) -> dict[str, str]:
        """Source column name -> warehouse column name, for the columns whose names differ."""
        return {c.source_name: c.name for c in self.columns if c.source_name not in (None, c.name)}

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


class PersonalData(_Model):
    """Why Qoima reads this provider's personal data: what every PD236 access event reports
    (docs/pd236.md). Free text, as the operator's legal department words it."""

    legal_basis: str = Field(min_length=3)   # the act and article, e.g. the Personal Data Law art. 9
    purpose: str = Field(min_length=3)       # what the warehouse does with the data


class Regulation(_Model):
    provider: str = Field(pattern=r"^[a-z][a-z0-9_]{0,30}$")
    organization: str
    information_system: str
    description: str = ""
    source: Source
    tables: list[Table] = Field(min_length=1)
    # The PD236 access protocol's legal basis and purpose (docs/pd236.md); a provider whose tables
    # hold personal data and that declares none is reported with an empty basis and listed by
    # `qoima pd236 status` as one to fix.
    personal_data: PersonalData | None = None
    # The data passport's general part (DM385 Appendix 1, model/passport.py, docs/passport.md).
    passport: Passport | None = None

    @model_validator(mode="after")
    def _passport_agrees(self) -> "Regulation":
        passport = self.passport
        if passport is None:
            return self
        derived = derived_frequency(self.source.capture.value, self.source.refresh)
        if passport.update_frequency is not None and passport.update_frequency is not derived:
            raise ValueError(f"passport.update_frequency {passport.update_frequency.value!r} contradicts the "
                             f"capture: Qoima reads this source as {derived.value!r}; remove the field (it is "
                             "derived) or change source.capture / source.refresh")
        from model.personal_data import categories   # it reads the regulation's own classes

        personal = any(categories(table) for table in self.tables)
        if personal and passport.accessibility is Accessibility.unrestricted:
            raise ValueError("passport.accessibility 'unrestricted' (open data), but the tables hold personal data; "
                             "set it to 'restricted' or 'both' with restrictions [personal_data]")
        return self

    @model_validator(mode="before")
    @classmethod
    def _columns_take_source_dbms(cls, data: Any) -> Any:
        """Copy source.dbms into every column, so that each type is read as its source writes it."""
        source = data.get("source") if isinstance(data, dict) else None
        dbms = source.get("dbms") if isinstance(source, dict) else None
        if dbms not in ("postgresql", "mariadb") or not isinstance(data.get("tables"), list):
            return data  # the source's own error says what is wrong
        tables = []
        for table in data["tables"]:
            if isinstance(table, dict) and isinstance(table.get("columns"), list):
                columns = []
                for column in table["columns"]:
                    if isinstance(column, dict):
                        if "dbms" in column:
                            raise ValueError(f"table {table.get('name')}, column {column.get('name')}: a column "
                                             "takes its dbms from source.dbms; remove 'dbms' from the column")
                        column = {**column, "dbms": dbms}
                    columns.append(column)
                table = {**table, "columns": columns}
            tables.append(table)
        return {**data, "tables": tables}

    @model_validator(mode="after")
    def _unique_tables(self) -> "Regulation":
        for names, what in (([t.name for t in self.tables], "tables declared twice"),
                            ([f"{t.schema_name}.{t.table_name}" for t in self.tables],
                             "source tables declared twice")):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"{what}: {', '.join(duplicates)}")
        return self

    @field_validator("tables")
    @classmethod
    def _capture_columns(cls, tables: list[Table], info) -> list[Table]:
        source = info.data.get("source")  # absent when the source itself is invalid
        if source is None:
            return tables
        for table in tables:
            if source.dbms == "mariadb" and table.schema_name != source.database:
                # Debezium names a MariaDB table <database>.<table>; one regulation reads one database.
                raise ValueError(f"table {table.name}: a MariaDB table is named <database>.<table> with the "
                                 f"database of source.database; rename it {source.database}.{table.table_name} "
                                 "(database names in lower case) or give it its own regulation")
            if source.capture is Capture.marker and table.marker is None:
                raise ValueError(f"table {table.name}: capture 'marker' needs 'marker: <column>' on every table, "
                                 "a non-null column that increases with every change (e.g. updated_at timestamptz)")
            beyond_ascii = [n for n in (table.schema_name, table.table_name, *(c.source_column for c in table.columns))
                            if not n.isascii()]
            if source.capture is Capture.cdc and beyond_ascii:
                raise ValueError(
                    f"table {table.name}: {', '.join(beyond_ascii)}: a name beyond ASCII (Cyrillic, Kazakh) cannot be "
                    "captured by CDC with Debezium 3.0: its PostgreSQL decoder reads the names in the WAL byte by "
                    "byte, so such a table's changes stream under a garbled name and are lost (its MariaDB "
                    "connector is not verified with them either); rename it at the source, or capture the "
                    "table with 'capture: marker' (docs/regulation.md, 'Names')")
            if source.capture is Capture.cdc and (table.marker or table.deleted_flag):
                raise ValueError(f"table {table.name}: 'marker' and 'deleted_flag' apply to capture 'marker' only; "
                                 "remove them (CDC sees every change, hard deletes included)")
        return tables

    @property
    def polled(self) -> bool:
        """Captured by polling a marker column (connectors/marker/), not by Debezium."""
        return self.source.capture is Capture.marker

    # The provider's names, as model/names.py spells them.
    @property
    def connector_name(self) -> str:
        return names.connector_name(self.provider)

    @property
    def raw_topic_prefix(self) -> str:
        return names.raw_topic_prefix(self.provider)

    def raw_topic(self, table: Table) -> str:
        """Debezium's topic for the table; two tables whose source names differ only in characters
        a topic cannot hold share one (streams/router.py tells them apart)."""
        return names.raw_topic(self.provider, f"{table.schema_name}.{table.table_name}")

    def clean_topic(self, table: Table) -> str:
        return names.clean_topic(self.provider, table.name)

    def warehouse_table(self, table: Table) -> str:
        return names.warehouse_table(self.provider, table.name)

    def history_table(self, table: Table) -> str:
        return names.history_table(self.provider, table.name)

    def held_topic(self, table: Table) -> str:
        return names.held_topic(self.provider, table.name)

    def held_table(self, table: Table) -> str:
        return names.held_table(self.provider, table.name)

    def incident_key(self, table: Table, rule: str) -> str:
        return names.incident_key(self.provider, table.name, rule)

    @property
    def slot_name(self) -> str:
        return names.slot_name(self.provider)

    @property
    def publication_name(self) -> str:
        return names.publication_name(self.provider)

    @property
    def publication_tables(self) -> list[tuple[str, str]]:
        """What the PostgreSQL publication holds, as (schema, table) at the source: the regulated
        tables, then the signal table."""
        return [*((t.schema_name, t.table_name) for t in self.tables), tuple(names.SIGNAL_TABLE.split("."))]

    def table(self, name: str) -> Table:
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(f"provider {self.provider} declares no table {name!r}; declared: {', '.join(t.name for t in self.tables)}")


def _interpolate(node, environ: dict[str, str], path: Path):
    """Replace ${VAR} and ${VAR:-default} in string values, so one file serves every stack."""
    if isinstance(node, dict):
        return {k: _interpolate(v, environ, path) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, environ, path) for v in node]
    if isinstance(node, str):
        def repl(match: re.Match) -> str:
            name, default = match.group(1), match.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            raise RegulationError(f"{path}: ${{{name}}} is not set; export {name} or write ${{{name}:-default}}")
        return _INTERPOLATION.sub(repl, node)
    return node


def _describe(error: ValidationError, raw: dict, path: Path) -> str:
    lines = [f"{path}: the regulation is invalid ({error.error_count()} problem(s)):"]
    for item in error.errors():
        item = rules.plain_error(item)  # a rule reads as one model, without pydantic's union tags
        location = _location(item["loc"], raw) or "regulation"  # a check across fields has no one place
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field; remove it or check its spelling against docs/regulation.md"
        elif item["type"] == "missing":
            message = "required field is missing; see docs/regulation.md"
        lines.append(f"  - {location}: {message}")
    return "\n".join(lines)


def _location(loc: tuple, raw) -> str:
    """tables[1].columns[3] reads better as tables[social.payments].columns[amount]."""
    parts, node = [], raw
    for step in loc:
        if isinstance(step, int) and isinstance(node, list):
            item = node[step] if step < len(node) else None
            label = item.get("name") if isinstance(item, dict) else None
            parts.append(f"[{label or step}]")
            node = item
        else:
            parts.append(f".{step}" if parts else str(step))
            node = node.get(step) if isinstance(node, dict) else None
    return "".join(parts)


def load_regulation(path: Path, environ: dict[str, str]) -> Regulation:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegulationError(f"{path}: no such regulation file") from None
    except yaml.YAMLError as exc:
        raise RegulationError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise RegulationError(f"{path}: a regulation is a YAML mapping with provider, source and tables")
    raw = _interpolate(raw, environ, path)
    try:
        return Regulation.model_validate(raw)
    except ValidationError as exc:
        raise RegulationError(_describe(exc, raw, path)) from None


def load_all(directory: Path, environ: dict[str, str]) -> list[Regulation]:
    files = sorted(Path(directory).glob("*.yaml"))
    if not files:
        raise RegulationError(f"{directory}: no regulation files (*.yaml); set QOIMA_REGULATIONS_DIR or add one")
    regulations = [load_regulation(f, environ) for f in files]
    providers = [r.provider for r in regulations]
    duplicates = sorted({p for p in providers if providers.count(p) > 1})
    if duplicates:
        raise RegulationError(f"{directory}: provider declared in more than one file: {', '.join(duplicates)}")
    return regulations
