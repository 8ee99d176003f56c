"""Step 2 of the cross-row rules: the claims of one key, from every worker, judged in one place.

Claims with one key all land in one rules partition (streams/cross_row/claims.py), so the
worker that owns the partition sees every row that shares a value, a referenced key or a match,
whichever worker routed the row. Its state, per partition (every key starts `<partition>|`, so
a worker restores only the partitions it owns):

- `values`: a uniqueness key -> the rows holding the value;
- `references`: an integrity key -> the row providing it; a consistency key -> the reference
  row and its compared digests;
- `pending`: `<table>|<rule>|<row>` -> a row waiting for its reference: [due, key, compared
  digests or None, sample]. When `due` passes, a still missing reference is an integrity
  incident, a contradicting one a consistency incident.

A verdict is (regulation, table, violation, sample): the incident of the row's rule, with the
row's clean key as its sample.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from model.regulation import Regulation, Table
from model.rules import RuleAction, RuleKind
from streams.state_store import ChangelogStore
from streams.cross_row.plan import Against, CrossRowPlan, Unique
from streams.quality import Violation

Verdict = tuple[Regulation, Table, Violation, "str | None"]


class Judge:
    def __init__(self, plan: CrossRowPlan, values: ChangelogStore, references: ChangelogStore,
                 pending: ChangelogStore) -> None:
        self.plan = plan
        self._values, self._refs, self._pending = values, references, pending
        self._unique: dict[tuple[str, str], Unique] = {
            (table, unique.rule.name): unique for table, uniques in plan.unique.items() for unique in uniques}

    def apply(self, partition: int, key: str, message: dict[str, Any]) -> list[Verdict]:
        """One claim from the rules partition `partition`; the verdicts it causes now."""
        kind = message["k"]
        if kind == "forget":
            self.forget(partition, message["t"], message["shard"])
            return []
        pk, state_key = message["pk"], f"{partition}|{key}"
        if kind == "claim":
            holders = self._values.get(state_key) or []
            if pk not in holders:
                # Assigned, not appended: a store logs a key when it is assigned, not when a list it holds grows.
                self._values[state_key] = holders = [*holders, pk]
            unique = self._unique.get((message["t"], message["r"]))
            if holders == [pk] or unique is None:   # None: a rule removed since the claim was made
                return []
            names = ", ".join(c.name for c in unique.columns)
            return [self._verdict(message["t"], Violation.of(unique.rule, tuple(c.name for c in unique.columns),
                                                             f"{names}: the same value as another row"),
                                  message["s"])]
        if kind == "release":
            holders = [h for h in self._values.get(state_key) or [] if h != pk]
            if holders:
                self._values[state_key] = holders
            else:
                self._values.pop(state_key, None)
        elif kind == "provide":
            if self._refs.get(state_key) != pk:
                self._refs[state_key] = pk
        elif kind == "unprovide":
            if self._refs.get(state_key) == pk:
                del self._refs[state_key]
        elif kind == "ref":
            entry = [pk, message["c"]]
            if self._refs.get(state_key) != entry:
                self._refs[state_key] = entry
        elif kind == "unref":
            if (self._refs.get(state_key) or [None])[0] == pk:  # not if a duplicate has taken it over since
                del self._refs[state_key]
        elif kind == "withdraw":
            self._pending.pop(self._pending_key(partition, message), None)
        elif kind == "need":
            pending_key = self._pending_key(partition, message)
            if state_key in self._refs:
                self._pending.pop(pending_key, None)
            else:
                self._pending[pending_key] = [message["due"], key, None, message["s"]]
        elif kind == "check":
            pending_key = self._pending_key(partition, message)
            reference = self._refs.get(state_key)
            if reference is None:
                self._pending[pending_key] = [message["due"], key, message["c"], message["s"]]
                return []
            self._pending.pop(pending_key, None)
            against = self.plan.by_scope.get(f"{message['t']}|{message['r']}")
            if against is None:
                return []   # a rule removed since the claim was made
            violation = self._contradiction(against, message["c"], reference[1])
            return [self._verdict(message["t"], violation, message["s"])] if violation else []
        else:
            raise ValueError(f"unknown claim kind {kind!r}")
        return []

    @staticmethod
    def _pending_key(partition: int, message: dict[str, Any]) -> str:
        return f"{partition}|{message['t']}|{message['r']}|{message['pk']}"

    def _verdict(self, table: str, violation: Violation, sample: str | None) -> Verdict:
        regulation, declared = self.plan.tables[table]
        return regulation, declared, violation, sample

    @staticmethod
    def _contradiction(against: Against, ours: list, theirs: list, late: bool = False) -> Violation | None:
        pairs = [(mine, other) for mine, other, a, b in zip(against.compare, against.reference_compare, ours, theirs)
                 if a is not None and b is not None and a != b]
        if not pairs:
            return None
        names = ", ".join(mine.name for mine, _ in pairs)
        problem = (f"{names}: not as in {against.reference} "
                   f"({', '.join(f'{against.reference}.{other.name}' for _, other in pairs)})")
        if late:
            problem += ", whose row arrived after this one"
        return Violation.of(against.rule, tuple(mine.name for mine, _ in pairs), problem)

    def forget(self, partition: int, table: str, shard: int) -> int:
        """A TRUNCATE of `table`, as seen by `shard`: drop what the shard's rows of the table
        claimed in this partition (held values, provided references, rows waiting); the number
        of entries changed. Other shards' rows are forgotten by their own `forget`."""
        row = f"{shard}."
        changed = 0
        unique = f"{partition}|u|{table}|"
        for key in self._values.keys_with_prefix(unique):
            holders = self._values[key]
            kept = [h for h in holders if not h.startswith(row)]
            if len(kept) != len(holders):
                changed += 1
                if kept:
                    self._values[key] = kept
                else:
                    del self._values[key]
        provided = (f"{partition}|r|{table}.",
                    *(f"{partition}|a|{against.scope}|" for against in self.plan.reference_of.get(table, ())))
        for key in [k for prefix in provided for k in self._refs.keys_with_prefix(prefix)]:
            entry = self._refs[key]
            if (entry if isinstance(entry, str) else entry[0]).startswith(row):
                del self._refs[key]
                changed += 1
        waiting = f"{partition}|{table}|"
        for key in self._pending.keys_with_prefix(waiting):
            if key.rsplit("|", 1)[1].startswith(row):
                del self._pending[key]
                changed += 1
        return changed

    def expire(self, now_ms: int) -> list[Verdict]:
        """Rows whose grace period is over: a reference still missing (integrity) or arrived and
        contradicting (consistency) is one verdict each; either way the row stops waiting."""
        verdicts = []
        for pending_key, entry in list(self._pending.items()):
            if entry[0] > now_ms:
                continue
            del self._pending[pending_key]
            partition, table_name, rule_name, _ = pending_key.split("|", 3)
            if table_name not in self.plan.tables:
                continue  # no longer regulated
            violation = self._expired(partition, table_name, rule_name, entry)
            if violation is not None:
                verdicts.append(self._verdict(table_name, violation, entry[3]))
        return verdicts

    def _expired(self, partition: str, table: str, rule_name: str, entry: list) -> Violation | None:
        _, key, compared, _ = entry
        reference = self._refs.get(f"{partition}|{key}")
        against = self.plan.by_scope.get(f"{table}|{rule_name}")
        if against is not None:
            if reference is None:
                return None  # still missing: an integrity rule's business
            violation = self._contradiction(against, compared, reference[1], late=True)
            # The row is loaded already: what is left is the incident.
            return violation and replace(violation, action=RuleAction.flag.value)
        rule = self.plan.rules.get((table, rule_name))
        if rule is None or rule.kind is not RuleKind.integrity or reference is not None:
            return None  # the rule was removed or changed since, or the reference came
        target = rule.references
        return Violation.of(rule, (rule.column,), f"{rule.column}: no {target} row after {rule.grace_seconds} s")
