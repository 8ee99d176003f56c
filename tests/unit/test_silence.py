"""A provider silent longer than its declared refresh opens one incident per episode."""
from __future__ import annotations

from datetime import datetime, timezone

from governance.silence import SilenceWatch, last_commit


class _Client:
    def __init__(self, newest):
        self.newest, self.queries = newest, []

    def query(self, sql):
        self.queries.append(sql)
        return type("R", (), {"result_rows": [(self.newest,)]})()


def test_one_incident_per_silent_episode(demo) -> None:
    watch = SilenceWatch()
    now = 1_800_000_000.0
    assert watch.observe(demo, now - 3_000, now) is None                 # within an hour: fine
    found = watch.observe(demo, now - 7_300, now)
    assert (found.provider, found.rule, found.type, found.table) == ("demo", "source_silent", "timeliness", None)
    assert "refresh 'continuous'" in found.detail
    assert watch.observe(demo, now - 7_400, now + 100) is None           # the same episode
    assert watch.observe(demo, now, now) is None                          # a change ends it
    assert watch.observe(demo, now - 7_300, now) is not None              # a new episode
    assert watch.observe(demo, None, now) is None                         # no data yet: nothing to judge


def test_last_commit_reads_every_table_and_treats_the_epoch_as_no_data(demo) -> None:
    client = _Client(datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc))
    assert last_commit(client, demo) == datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc).timestamp()
    assert all(f"`{demo.warehouse_table(t)}`" in client.queries[0] for t in demo.tables)
    assert last_commit(_Client(datetime(1970, 1, 1)), demo) is None
