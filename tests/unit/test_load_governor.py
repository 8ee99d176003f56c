"""The load governor's decisions (governance/load_governor.py): which providers' loads to pause or
resume for the processor's backlog. Its reading of the backlog from Kafka is in the e2e tests."""
from __future__ import annotations

from governance.load_governor import Governor, processor_topics


def _load(provider: str, **marks) -> dict:
    return {"provider": provider, "signal_id": "s", "requested_ms": 0, "tables": {"t": 1}, **marks}


def test_a_deep_backlog_pauses_each_loading_provider_once() -> None:
    governor = Governor(20_000)
    loads = [_load("demo"), _load("demo"), _load("shop")]
    assert governor.decide(20_001, loads) == [("demo", False), ("shop", False)]
    assert governor.decide(20_000, loads) == []            # at the limit: not above it
    throttled = [_load("demo", throttled_ms=1), _load("shop", throttled_ms=1)]
    assert governor.decide(50_000, throttled, now=1.0) == []   # paused already, a moment ago


def test_a_throttled_load_resumes_below_half_the_limit() -> None:
    governor = Governor(20_000)
    throttled = [_load("demo", throttled_ms=1)]
    assert governor.decide(10_000, throttled) == []        # between: keep as it is
    assert governor.decide(9_999, throttled) == [("demo", True)]
    assert governor.decide(0, [_load("demo")]) == []       # never paused: nothing to resume


def test_a_load_requested_while_throttled_is_held_too_and_resumed_with_the_rest() -> None:
    governor = Governor(20_000)
    loads = [_load("demo", throttled_ms=1), _load("demo")]
    assert governor.decide(30_000, loads) == [("demo", False)]
    assert governor.decide(1_000, loads) == [("demo", True)]


def test_while_throttled_and_deep_the_pause_goes_again_now_and_then() -> None:
    """Debezium forgets a pause when Connect restarts: the governor says it again every RESEND_S."""
    governor = Governor(20_000)
    # Marked by the governor's previous life (an assessor restart): said again at once.
    assert governor.decide(30_000, [_load("demo", throttled_ms=1)], now=50.0) == [("demo", False)]
    assert governor.decide(30_000, [_load("demo")], now=100.0) == [("demo", False)]
    throttled = [_load("demo", throttled_ms=1)]
    assert governor.decide(30_000, throttled, now=105.0) == []
    assert governor.decide(30_000, throttled, now=100.0 + Governor.RESEND_S) == [("demo", False)]


def test_the_operators_pause_is_never_resumed_or_doubled() -> None:
    governor = Governor(20_000)
    assert governor.decide(0, [_load("demo", paused_ms=1, throttled_ms=1)]) == []
    assert governor.decide(90_000, [_load("demo", paused_ms=1)]) == []


def test_the_backlog_counts_the_topics_the_processor_reads_and_no_other(demo) -> None:
    topics = processor_topics([demo])
    assert {"qoima.raw.demo.population.persons", "qoima.raw.processor-work", "qoima.processor-rules"} <= set(topics)
    # Debezium writes the signal table's changes to a raw topic too; the processor never reads it,
    # so its events would count as a backlog that never drains (found on the local stack).
    assert "qoima.raw.demo.public.qoima_signal" not in topics
    assert not [topic for topic in topics if topic.startswith("qoima.clean.") or topic == "qoima.processor-state"]
