"""The cross-row rules' two steps wired as the processor wires them, without Kafka.

Each claim goes through JSON as on the rules topic and is judged in the rules partition its key
hashes to; a row is claimed in the shard (work partition) its primary key hashes to, unless the
test names one.
"""
from __future__ import annotations

import json

from model.regulation import Regulation, Table
from schemas.envelope import Change
from streams.batch import partition_for
from streams.cross_row.claims import Claim, Claims
from streams.cross_row.judge import Judge
from streams.cross_row.plan import CrossRowPlan
from streams.quality import Violation
from streams.state_store import ChangelogStore


class CrossRow:
    def __init__(self, regulations: list[Regulation], key: bytes, state: dict, partitions: int = 1) -> None:
        plan = CrossRowPlan(regulations, key)
        self.partitions = partitions
        # The processor's stores over the test's dicts (kept in memory, so the dicts are the state).
        stores = {name: ChangelogStore(name, data) for name, data in state.items()}
        self.claims = Claims(plan, stores["owners"])
        self.judge = Judge(plan, stores["values"], stores["references"], stores["pending"])

    def shard_of(self, table: Table, change: Change) -> int:
        key = json.dumps([change.row.get(k) for k in table.primary_key]).encode()
        return partition_for(key, self.partitions)

    def claim(self, table: Table, change: Change, now_ms: int, shard: int | None = None) -> list[Claim]:
        shard = self.shard_of(table, change) if shard is None else shard
        # The router gives the row's clean key, depersonalized; its form does not matter here.
        return self.claims.of(table, change, shard, "(clean key)", now_ms)

    def judge_claims(self, claims: list[Claim]) -> list[Violation]:
        violations = []
        for key, message in claims:
            wire = json.loads(json.dumps(message))
            partition = partition_for(key.encode(), self.partitions)
            violations += [v for _, _, v, _ in self.judge.apply(partition, key, wire)]
        return violations

    def observe(self, table: Table, change: Change, now_ms: int, shard: int | None = None) -> list[Violation]:
        """Timeliness of the row, then the verdicts its claims cause at once."""
        return self.claims.late(table, change, now_ms) + self.judge_claims(self.claim(table, change, now_ms, shard))

    def expire(self, now_ms: int) -> list[tuple]:
        return [(regulation, table, violation) for regulation, table, violation, _ in self.judge.expire(now_ms)]

    def forget(self, table: str) -> int:
        """A TRUNCATE of `table`, as every shard passes it on to every rules partition."""
        return sum(self.claims.forget(table, shard) + sum(self.judge.forget(r, table, shard)
                                                          for r in range(self.partitions))
                   for shard in range(self.partitions))
