"""The processor reads directly whatever raw offsets Faust's fetcher skips."""
from __future__ import annotations

from streams.gap_filler import GapFiller

TP = ("qoima.raw.demo.social.organizations", 0)
LOG = {o: f"event {o}".encode() for o in range(0, 300)}


def reader(calls):
    def read(tp, start, end):
        calls.append((tp, start, end))
        return iter([(o, LOG[o]) for o in range(start, end)])
    return read


def test_contiguous_offsets_need_nothing():
    calls = []
    gaps = GapFiller({TP: 257}, reader(calls))
    assert gaps.before(TP, 257) == (True, [])
    assert gaps.before(TP, 258) == (True, [])
    assert calls == [] and gaps.filled == 0


def test_a_skipped_range_is_read_first_in_order():
    # What the crash test saw: after a restart Faust handed over 262 while 258-261 were never seen.
    calls = []
    gaps = GapFiller({TP: 257}, reader(calls))
    assert gaps.before(TP, 257) == (True, [])
    assert gaps.before(TP, 262) == (True, [(o, LOG[o]) for o in range(258, 262)])
    assert calls == [(TP, 258, 262)] and gaps.filled == 4
    assert gaps.before(TP, 263) == (True, [])


def test_the_first_event_after_a_restart_is_checked_against_the_committed_offset():
    gaps = GapFiller({TP: 100}, reader([]))
    assert gaps.before(TP, 103) == (True, [(100, LOG[100]), (101, LOG[101]), (102, LOG[102])])


def test_an_offset_already_processed_is_passed_over():
    gaps = GapFiller({TP: 10}, reader([]))
    gaps.before(TP, 10)
    gaps.before(TP, 11)
    assert gaps.before(TP, 11) == (False, [])
    assert gaps.before(TP, 5) == (False, [])
    assert gaps.passed_over == 2
    assert gaps.before(TP, 12) == (True, [])


def test_a_partition_without_a_start_begins_where_it_begins():
    other = ("qoima.raw.demo.social.payments", 0)
    gaps = GapFiller({}, reader([]))
    assert gaps.before(other, 40) == (True, [])
    assert gaps.before(other, 42) == (True, [(41, LOG[41])])


def test_a_range_the_log_no_longer_holds_is_not_invented():
    gaps = GapFiller({TP: 5}, lambda tp, start, end: iter([]))
    assert gaps.before(TP, 9) == (True, [])
    assert gaps.filled == 0
