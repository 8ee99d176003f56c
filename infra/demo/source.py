"""The demo source database in PostgreSQL: schema, initial data and a steady change load.

Every function takes a libpq conninfo string. Rows come from `generator`; only the listed
columns are written, so the generator's `_defect` marker never reaches the database.

Privacy: nothing here logs or prints an IIN, a name or a phone; summaries are counts only.
"""
from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable

import psycopg
from psycopg import sql

from infra.demo import generator

SCHEMA_FILE = Path(__file__).with_name("schema.sql")

PERSON_COLUMNS = (
    "iin", "last_name", "first_name", "middle_name", "birth_date", "sex", "phone", "address",
    "kato_code", "status",
)
ORGANIZATION_COLUMNS = ("bin", "name", "kato_code")
LICENSE_COLUMNS = ("holder_iin", "license_type", "issued_on", "revoked")
PAYMENT_COLUMNS = (
    "person_iin", "org_bin", "payment_type", "amount", "period", "status", "paid_at", "kato_code",
)
# The payment system re-reads the recipient's region from the register whenever it changes a
# payment, so that a payment written before its recipient moved does not contradict the register.
_REGION_FROM_REGISTER = (
    "kato_code = coalesce((SELECT p.kato_code FROM population.persons p"
    " WHERE p.iin = payments.person_iin ORDER BY p.updated_at DESC LIMIT 1), kato_code)"
)

# Serialises concurrent apply_schema/seed calls: CREATE ... IF NOT EXISTS races otherwise,
# and two seeds must not both see empty tables.
_LOCK_KEY = 0x716F696D61  # "qoima"


def apply_schema(conninfo: str) -> None:
    """Create the demo schemas and tables if they do not exist."""
    with psycopg.connect(conninfo) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute(SCHEMA_FILE.read_text(encoding="utf-8"))


def seed(
    conninfo: str,
    persons: int = 2000,
    organizations: int = 200,
    payments: int = 5000,
    seed: int | None = None,
    defect_rate: float = 0.02,
) -> dict[str, int]:
    """Fill empty demo tables; return the row counts per table afterwards.

    Does nothing if any of the three tables already holds rows, so it can run on every start.
    """
    if payments and not (persons and organizations):
        raise ValueError("payments need at least one person and one organization")
    rng = random.Random(seed)
    with psycopg.connect(conninfo) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        counts = _count_rows(conn)
        if any(counts.values()):
            return counts
        person_rows = [generator.make_person(rng, defect_rate=defect_rate) for _ in range(persons)]
        org_rows = [generator.make_organization(rng, defect_rate=defect_rate) for _ in range(organizations)]
        payment_rows = [
            generator.make_payment(
                rng, person["iin"], rng.choice(org_rows)["bin"],
                kato_code=person["kato_code"], defect_rate=defect_rate,
            )
            for person in (rng.choice(person_rows) for _ in range(payments))
        ]
        with conn.cursor() as cur:
            _copy(cur, ("population", "persons"), PERSON_COLUMNS, person_rows)
            _copy(cur, ("social", "organizations"), ORGANIZATION_COLUMNS, org_rows)
            _copy(cur, ("social", "payments"), PAYMENT_COLUMNS, payment_rows)
    return {"persons": persons, "organizations": organizations, "payments": payments}


LICENSE_TYPES = ("medical", "pharmacy", "education", "construction", "transport")


def seed_licenses(conninfo: str, licenses: int = 300, seed: int | None = None) -> int:
    """Fill an empty registry.licenses (the marker-mode demo table); return its row count.

    Holders are persons of the register, so their pseudonyms join; one licence in twenty is
    revoked already (a soft delete the poller turns into a delete). `updated_at` is left to its
    default: the table has no trigger, the application sets it, as marker mode expects.
    """
    rng = random.Random(seed)
    with psycopg.connect(conninfo) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        existing = conn.execute("SELECT count(*) FROM registry.licenses").fetchone()[0]
        if existing:
            return existing
        holders = [iin for (iin,) in conn.execute(
            "SELECT iin FROM population.persons ORDER BY person_id LIMIT %s", (licenses,))]
        rows = [{"holder_iin": holders[i] if i < len(holders) else generator.make_person(rng)["iin"],
                 "license_type": rng.choice(LICENSE_TYPES),
                 "issued_on": date.today() - timedelta(days=rng.randrange(5 * 365)),
                 "revoked": rng.random() < 0.05}
                for i in range(licenses)]
        with conn.cursor() as cur:
            _copy(cur, ("registry", "licenses"), LICENSE_COLUMNS, rows)
    return licenses


FILL_CHUNK = 10_000


def fill_persons(conninfo: str, rows: int, seed: int | None = None, defect_rate: float = 0.02,
                 progress: Callable[[int], None] | None = None) -> int:
    """Add `rows` persons to population.persons (a register of national size for a load
    benchmark): realistic IINs, names, phones, addresses and KATO codes, with the generator's
    defects at `defect_rate`. Written by COPY in transactions of FILL_CHUNK rows, so the WAL and
    the source see the same commits a bulk import would make; `progress` gets the rows written
    so far after each. Returns the table's row count afterwards."""
    if rows < 0:
        raise ValueError("rows must not be negative")
    rng = random.Random(seed)
    written = 0
    with psycopg.connect(conninfo) as conn:
        while written < rows:
            chunk = min(FILL_CHUNK, rows - written)
            with conn.transaction(), conn.cursor() as cur:
                _copy(cur, ("population", "persons"), PERSON_COLUMNS,
                      (generator.make_person(rng, defect_rate=defect_rate) for _ in range(chunk)))
            written += chunk
            if progress is not None:
                progress(written)
        return conn.execute("SELECT count(*) FROM population.persons").fetchone()[0]


def _count_rows(conn: psycopg.Connection[Any]) -> dict[str, int]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM population.persons),"
        " (SELECT count(*) FROM social.organizations),"
        " (SELECT count(*) FROM social.payments)"
    ).fetchone()
    assert row is not None
    return dict(zip(("persons", "organizations", "payments"), row))


def _copy(
    cur: psycopg.Cursor[Any], table: tuple[str, str], columns: tuple[str, ...], rows: Iterable[dict[str, Any]]
) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(*table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with cur.copy(statement) as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns])


def _insert_sql(table: str, columns: tuple[str, ...], key: str) -> str:
    placeholders = ", ".join(["%s"] * len(columns))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) RETURNING {key}"


_INSERT_PERSON = _insert_sql("population.persons", PERSON_COLUMNS, "person_id")
_INSERT_ORGANIZATION = _insert_sql("social.organizations", ORGANIZATION_COLUMNS, "org_id")
_INSERT_PAYMENT = _insert_sql("social.payments", PAYMENT_COLUMNS, "payment_id")

_LOAD_IDS = """
SELECT 'person', person_id, iin::text, kato_code FROM population.persons
UNION ALL SELECT 'organization', org_id, bin::text, NULL FROM social.organizations
UNION ALL SELECT 'payment', payment_id, status, NULL FROM social.payments
ORDER BY 1, 2
"""

# Beyond this the driver stops trying to catch up, so a stalled database is not followed by
# a burst far above the target rate.
_MAX_LAG = 1.0
_PROGRESS_INTERVAL = 1.0
_MAX_STATEMENTS_PER_TRANSACTION = 10


@dataclass(frozen=True)
class LoadSummary:
    """Rows changed by a load run; counts only, by design."""

    inserts: int
    updates: int
    deletes: int
    elapsed: float

    @property
    def changes(self) -> int:
        return self.inserts + self.updates + self.deletes

    @property
    def rate(self) -> float:
        return self.changes / self.elapsed if self.elapsed > 0 else 0.0

    def __str__(self) -> str:
        return (
            f"{self.inserts} inserts, {self.updates} updates, {self.deletes} deletes"
            f" in {self.elapsed:.1f} s ({self.rate:.0f} changes/s)"
        )


class _Pool:
    """Ids (each with an optional value) with O(1) random pick and random removal."""

    def __init__(self) -> None:
        self._ids: list[int] = []
        self._values: list[Any] = []

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, key: int, value: Any = None) -> None:
        self._ids.append(key)
        self._values.append(value)

    def choice(self, rng: random.Random) -> tuple[int, Any]:
        i = rng.randrange(len(self._ids))
        return self._ids[i], self._values[i]

    def pop(self, rng: random.Random) -> tuple[int, Any]:
        i = rng.randrange(len(self._ids))
        picked = self._ids[i], self._values[i]
        self._ids[i], self._values[i] = self._ids[-1], self._values[-1]
        self._ids.pop()
        self._values.pop()
        return picked


@dataclass(frozen=True, slots=True)
class _Op:
    kind: str  # "inserts", "updates" or "deletes": the LoadSummary field it counts towards
    query: str
    params: tuple[Any, ...]
    on_inserted: Callable[[int], None] | None = None


class LoadDriver:
    """Drives a realistic mix of inserts, updates and deletes at a steady rate.

    The mix is about 50 % inserts (mostly payments), 35 % updates (payments paid, cancelled,
    returned or corrected; persons' phones, addresses, statuses) and 15 % deletes (mostly
    cancelled payments, a few persons). Statements go in small transactions, each sent as
    one pipeline, so a single connection keeps up with over a thousand changes a second.
    Ids to update and delete come from an in-memory pool loaded once at the start and kept
    current as the driver itself changes rows.
    """

    def __init__(
        self, conninfo: str, rate: float, *, seed: int | None = None, defect_rate: float = 0.02
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self._conninfo = conninfo
        self._rate = rate
        self._rng = random.Random(seed)
        self._defect_rate = defect_rate
        # About a hundred transactions a second at most, so low rates still trickle evenly.
        self._max_batch = max(1, min(_MAX_STATEMENTS_PER_TRANSACTION, round(rate / 100)))
        self._persons = _Pool()  # value: [IIN, KATO code], the code kept current as persons move
        self._organizations = _Pool()  # value: BIN
        self._payments = {status: _Pool() for status in generator.PAYMENT_STATUSES}
        self._counts = {"inserts": 0, "updates": 0, "deletes": 0}
        planners = (
            (35.0, self._insert_payment), (12.5, self._insert_person), (2.5, self._insert_organization),
            (10.5, self._pay), (3.5, self._cancel), (1.75, self._return_payment),
            (5.25, self._correct_amount), (7.0, self._change_phone), (4.2, self._move_person),
            (2.8, self._change_person_status),
            (12.75, self._delete_payment), (2.25, self._delete_person),
        )
        self._planners = [planner for _, planner in planners]
        self._weights = [weight for weight, _ in planners]

    def run(
        self,
        duration: float | None = None,
        progress: Callable[[LoadSummary], None] | None = None,
        stop_event: threading.Event | None = None,
    ) -> LoadSummary:
        """Run until `duration` seconds pass, `stop_event` is set or Ctrl-C; return the totals."""
        with psycopg.connect(self._conninfo, autocommit=True) as conn:
            self._load_pools(conn)
            start = time.monotonic()
            end = math.inf if duration is None else start + duration
            due = start  # when the next transaction should start to hold the rate
            next_report = start + _PROGRESS_INTERVAL
            try:
                while not (stop_event is not None and stop_event.is_set()):
                    now = time.monotonic()
                    if now >= end:
                        break
                    if now < due:
                        _sleep(min(due, end) - now, stop_event)
                        continue
                    due = max(due, now - _MAX_LAG)
                    size = self._rng.randint(math.ceil(self._max_batch / 2), self._max_batch)
                    self._execute(conn, [self._plan() for _ in range(size)])
                    due += size / self._rate
                    if progress is not None and now >= next_report:
                        progress(self._summary(now - start))
                        next_report = now + _PROGRESS_INTERVAL
            except KeyboardInterrupt:
                pass
            return self._summary(time.monotonic() - start)

    def _summary(self, elapsed: float) -> LoadSummary:
        return LoadSummary(elapsed=elapsed, **self._counts)

    def _load_pools(self, conn: psycopg.Connection[Any]) -> None:
        for table, key, value, kato in conn.execute(_LOAD_IDS):
            if table == "person":
                self._persons.add(key, [value, kato])
            elif table == "organization":
                self._organizations.add(key, value)
            else:
                self._payments[value].add(key)

    def _execute(self, conn: psycopg.Connection[Any], ops: list[_Op]) -> None:
        # One round trip for the whole transaction; results are read once the pipeline syncs.
        with conn.pipeline(), conn.transaction():
            cursors = [conn.execute(op.query, op.params) for op in ops]
        for op, cur in zip(ops, cursors):
            if cur.rowcount > 0:
                self._counts[op.kind] += 1
            if op.on_inserted is not None:
                row = cur.fetchone()
                assert row is not None
                op.on_inserted(row[0])

    def _plan(self) -> _Op:
        planner = self._rng.choices(self._planners, weights=self._weights)[0]
        return planner() or self._insert_any()

    # Planners return None when the pool they need is empty. Pools are updated as statements
    # are planned (ids of new rows once they are known), so later statements in the same
    # transaction see the effect of earlier ones.

    def _insert_any(self) -> _Op:
        if not self._persons:
            return self._insert_person()
        if not self._organizations:
            return self._insert_organization()
        op = self._insert_payment()
        assert op is not None
        return op

    def _insert_person(self) -> _Op:
        row = generator.make_person(self._rng, defect_rate=self._defect_rate)
        params = tuple(row[c] for c in PERSON_COLUMNS)
        on_inserted = partial(self._persons.add, value=[row["iin"], row["kato_code"]])
        return _Op("inserts", _INSERT_PERSON, params, on_inserted)

    def _insert_organization(self) -> _Op:
        row = generator.make_organization(self._rng, defect_rate=self._defect_rate)
        params = tuple(row[c] for c in ORGANIZATION_COLUMNS)
        on_inserted = partial(self._organizations.add, value=row["bin"])
        return _Op("inserts", _INSERT_ORGANIZATION, params, on_inserted)

    def _insert_payment(self) -> _Op | None:
        if not (self._persons and self._organizations):
            return None
        _, (iin, kato) = self._persons.choice(self._rng)
        _, bin_ = self._organizations.choice(self._rng)
        row = generator.make_payment(self._rng, iin, bin_, kato_code=kato, defect_rate=self._defect_rate)
        # New payments enter the system unpaid; this also keeps the pending pool, which
        # payouts and cancellations drain, from running dry.
        row.update(status="pending", paid_at=None)
        params = tuple(row[c] for c in PAYMENT_COLUMNS)
        return _Op("inserts", _INSERT_PAYMENT, params, self._payments["pending"].add)

    def _move_payment(self, source: str, target: str, query: str) -> _Op | None:
        if not self._payments[source]:
            return None
        key, _ = self._payments[source].pop(self._rng)
        self._payments[target].add(key)
        return _Op("updates", query, (key,))

    def _pay(self) -> _Op | None:
        return self._move_payment(
            "pending", "paid",
            "UPDATE social.payments SET status = 'paid', paid_at = now(), updated_at = now(),"
            f" {_REGION_FROM_REGISTER} WHERE payment_id = %s",
        )

    def _cancel(self) -> _Op | None:
        return self._move_payment(
            "pending", "cancelled",
            f"UPDATE social.payments SET status = 'cancelled', updated_at = now(), {_REGION_FROM_REGISTER}"
            " WHERE payment_id = %s",
        )

    def _return_payment(self) -> _Op | None:
        return self._move_payment(
            "paid", "returned",
            f"UPDATE social.payments SET status = 'returned', updated_at = now(), {_REGION_FROM_REGISTER}"
            " WHERE payment_id = %s",
        )

    def _correct_amount(self) -> _Op | None:
        # Recalculations happen before payout, so only pending payments are corrected.
        if not self._payments["pending"]:
            return None
        key, _ = self._payments["pending"].choice(self._rng)
        factor = Decimal(self._rng.randint(8500, 11500)).scaleb(-4)
        return _Op(
            "updates",
            "UPDATE social.payments SET amount = round(amount * %s, 2), updated_at = now(),"
            f" {_REGION_FROM_REGISTER} WHERE payment_id = %s",
            (factor, key),
        )

    def _change_phone(self) -> _Op | None:
        if not self._persons:
            return None
        key, _ = self._persons.choice(self._rng)
        phone = generator.make_phone(self._rng, malformed=self._rng.random() < self._defect_rate)
        return _Op(
            "updates",
            "UPDATE population.persons SET phone = %s, updated_at = now() WHERE person_id = %s",
            (phone, key),
        )

    def _move_person(self) -> _Op | None:
        if not self._persons:
            return None
        key, person = self._persons.choice(self._rng)
        kato = person[1] = generator.make_kato(self._rng)
        return _Op(
            "updates",
            "UPDATE population.persons SET address = %s, kato_code = %s, updated_at = now()"
            " WHERE person_id = %s",
            (generator.make_address(self._rng, kato), kato, key),
        )

    def _change_person_status(self) -> _Op | None:
        if not self._persons:
            return None
        key, _ = self._persons.choice(self._rng)
        return _Op(
            "updates",
            "UPDATE population.persons SET status = %s, updated_at = now() WHERE person_id = %s",
            (self._rng.choice(generator.PERSON_STATUSES), key),
        )

    def _delete_payment(self) -> _Op | None:
        cancelled = self._payments["cancelled"]
        if cancelled and self._rng.random() < 0.7:
            pool = cancelled
        else:
            pools = [p for p in self._payments.values() if p]
            if not pools:
                return None
            pool = self._rng.choices(pools, weights=[len(p) for p in pools])[0]
        key, _ = pool.pop(self._rng)
        return _Op("deletes", "DELETE FROM social.payments WHERE payment_id = %s", (key,))

    def _delete_person(self) -> _Op | None:
        if not self._persons:
            return None
        key, _ = self._persons.pop(self._rng)
        return _Op("deletes", "DELETE FROM population.persons WHERE person_id = %s", (key,))


def run_load(
    conninfo: str,
    rate: float,
    duration: float | None = None,
    seed: int | None = None,
    defect_rate: float = 0.02,
    progress: Callable[[LoadSummary], None] | None = None,
    stop_event: threading.Event | None = None,
) -> LoadSummary:
    """Drive `rate` changes per second into the demo database; see LoadDriver."""
    driver = LoadDriver(conninfo, rate, seed=seed, defect_rate=defect_rate)
    return driver.run(duration=duration, progress=progress, stop_event=stop_event)


def _sleep(seconds: float, stop_event: threading.Event | None) -> None:
    if stop_event is None:
        time.sleep(seconds)
    else:
        stop_event.wait(seconds)
