"""Step 1 of the cross-row rules: a loaded row's values become claims keyed by what they are compared on.

Runs where the row is routed, in the row's work partition (its `shard`): every change of one
row comes through the same shard in commit order, so `owners`, the claims each row made last,
keyed by shard and row-key digest, always knows what an update or a delete must withdraw.

A claim is (rules key, message). The rules key is the judge's state key and decides the rules
partition; the message says what the row does to it:

- uniqueness, key `u|<table>|<rule>|<value digest>`: `claim`, `release`;
- a column an integrity rule references, key `r|<schema.table.column>|<value digest>`:
  `provide`, `unprovide`; a row that references it, same key: `need`, `withdraw`;
- consistency against a reference table, key `a|<table>|<rule>|<match digest>`: the reference
  table's row `ref` (with its compared digests), `unref`; the checking row `check`, `withdraw`.

Messages name rows by `<shard>.<row-key digest>`: a TRUNCATE reaches every shard, and each
shard sends `forget_claim` to every rules partition, which then drops exactly the entries its
own rows made (streams/cross_row/judge.py).
"""
from __future__ import annotations

from typing import Any

from model.regulation import Table
from schemas.envelope import Change, key_json
from streams.state_store import ChangelogStore
from streams.cross_row.plan import CrossRowPlan
from streams.quality import Violation

Claim = tuple[str, dict[str, Any]]


def forget_claim(table: str, shard: int) -> Claim:
    """What a TRUNCATE of `table` seen in `shard` tells every rules partition (not by key: the
    caller sends it to each)."""
    return "forget", {"k": "forget", "t": table, "shard": shard}


class Claims:
    def __init__(self, plan: CrossRowPlan, owners: ChangelogStore) -> None:
        self.plan = plan
        self._owners = owners

    def late(self, table: Table, change: Change, now_ms: int) -> list[Violation]:
        """Timeliness: the change reached the processor more than `max_lag_seconds` after its
        commit at the source. A fact of the row alone, so it applies its action to the row."""
        if change.is_delete:
            return []
        lag_ms = now_ms - change.source_ts_ms
        return [Violation.of(rule, (), f"processed more than {rule.max_lag_seconds} s after the source commit")
                for rule in self.plan.timely.get(table.name, ()) if lag_ms > rule.max_lag_seconds * 1000]

    def of(self, table: Table, change: Change, shard: int, sample: str | None, now_ms: int,
           unchanged: frozenset[str] = frozenset()) -> list[Claim]:
        """The claims of one loaded change; `sample` is its clean (depersonalized) record key.
        `unchanged`: columns the change did not send (streams/unchanged.py); if a rule reads
        one, the row keeps every claim it made before, since its values are not all known."""
        plan, name, row = self.plan, table.name, change.row
        if not plan.compares(name) or (unchanged and unchanged & plan.reads(name)):
            return []
        # The row's key as a digest too: a hashed primary key (an IIN) is a clear identifier.
        pk_digest = plan.digest(name, key_json([row.get(k) for k in table.primary_key], str))
        pk = f"{shard}.{pk_digest}"
        owner = f"{shard}|{name}|"
        deleted = change.is_delete
        claims: list[Claim] = []
        for unique in plan.unique.get(name, ()):
            values = None if deleted else plan.values_of(unique.columns, row)
            key = None if values is None else f"u|{name}|{unique.rule.name}|{plan.digest(name, unique.rule.name, *values)}"
            self._move(claims, f"{owner}u:{unique.rule.name}|{pk_digest}", key,
                       {"k": "claim", "t": name, "r": unique.rule.name, "pk": pk, "s": sample},
                       {"k": "release", "pk": pk})
        for target, column in plan.referenced.get(name, ()):
            value = None if deleted else plan.canonical(column, row)
            key = None if value is None else f"r|{target}|{plan.digest(target, value)}"
            self._move(claims, f"{owner}p:{target}|{pk_digest}", key,
                       {"k": "provide", "pk": pk}, {"k": "unprovide", "pk": pk})
        for reference in plan.integrity.get(name, ()):
            rule = reference.rule
            value = None if deleted else plan.canonical(reference.column, row)
            key = None if value is None else f"r|{reference.target}|{plan.digest(reference.target, value)}"
            self._move(claims, f"{owner}n:{rule.name}|{pk_digest}", key,
                       {"k": "need", "t": name, "r": rule.name, "pk": pk, "s": sample,
                        "due": now_ms + rule.grace_seconds * 1000},
                       {"k": "withdraw", "t": name, "r": rule.name, "pk": pk})
        for against in plan.reference_of.get(name, ()):
            values = None if deleted else plan.values_of(against.reference_match, row)
            key = None if values is None else f"a|{against.scope}|{plan.digest(against.salt, *values)}"
            compared = [] if key is None else plan.compared(against, against.reference_compare, row)
            self._move(claims, f"{owner}a:{against.scope}|{pk_digest}", key,
                       {"k": "ref", "pk": pk, "c": compared}, {"k": "unref", "pk": pk})
        for against in plan.against.get(name, ()):
            rule = against.rule
            values = None if deleted else plan.values_of(against.match, row)
            compared = [] if values is None else plan.compared(against, against.compare, row)
            # No reference to look for, or nothing that could contradict it: nothing to check.
            key = f"a|{against.scope}|{plan.digest(against.salt, *values)}" if any(compared) else None
            self._move(claims, f"{owner}c:{rule.name}|{pk_digest}", key,
                       {"k": "check", "t": name, "r": rule.name, "pk": pk, "c": compared, "s": sample,
                        "due": now_ms + rule.grace_seconds * 1000},
                       {"k": "withdraw", "t": name, "r": rule.name, "pk": pk})
        return claims

    def _move(self, claims: list[Claim], owner_key: str, key: str | None, made: dict, withdrawn: dict) -> None:
        """The row now claims `key` (None: nothing); what it claimed before elsewhere is withdrawn."""
        previous = self._owners.get(owner_key)
        if previous is not None and previous != key:
            claims.append((previous, withdrawn))
            del self._owners[owner_key]
        if key is not None:
            claims.append((key, made))
            if previous != key:  # assigned only on change: a store logs every assignment
                self._owners[owner_key] = key

    def forget(self, table: str, shard: int) -> int:
        """A TRUNCATE of `table` seen in `shard`: its rows there claim nothing any more; the
        number of entries dropped. The judge's `forget` drops what they claimed."""
        prefix = f"{shard}|{table}|"
        dropped = self._owners.keys_with_prefix(prefix)
        for key in dropped:
            del self._owners[key]
        return len(dropped)
