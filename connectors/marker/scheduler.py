"""`qoima poller`: poll each marker regulation every `poll_seconds` until stopped; a failed poll
backs off and is retried, a PollerConfigError stops the poller with what to fix."""
from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from connectors.marker.errors import PollerConfigError, PollerError, classify
from connectors.marker.poller import MarkerPoller
from connectors.marker.producer import KafkaOutput
from connectors.marker.source import PolledSource
from connectors.marker.state import load_states
from model.regulation import Regulation, load_all
from model.settings import Settings
from monitoring import metrics
from schemas import retry

log = logging.getLogger("qoima.poller")



def poll_until_stopped(poller: MarkerPoller, stop: threading.Event) -> None:
    """Poll each regulation every `poll_seconds` until `stop`; errors back off and retry.

    PollerConfigError stops the poller: the regulation or the source must be fixed.
    """
    due = {r.provider: 0.0 for r in poller.regulations}
    failures = {r.provider: 0 for r in poller.regulations}
    while not stop.is_set():
        for regulation in poller.regulations:
            if stop.is_set() or due[regulation.provider] > time.monotonic():
                continue
            try:
                poller.poll(regulation)
            except PollerConfigError:
                raise
            except Exception as exc:
                failures[regulation.provider] += 1
                delay = retry.delay_after(retry.SOURCE_POLL, failures[regulation.provider])
                _failed(poller, regulation, exc, delay)
                due[regulation.provider] = time.monotonic() + delay
                continue
            if failures[regulation.provider]:
                log.info("provider %s: polling again after %d failed attempt(s)", regulation.provider,
                         failures[regulation.provider])
            failures[regulation.provider] = 0
            due[regulation.provider] = time.monotonic() + regulation.source.poll_seconds
        stop.wait(max(0.05, min(due.values(), default=1.0) - time.monotonic()))


def _failed(poller: MarkerPoller, regulation: Regulation, exc: Exception, delay: float) -> None:
    kind, what = classify(exc)
    source = regulation.source
    for table in poller.tables[regulation.provider]:
        metrics.POLLER_ERRORS.labels(table.name, kind).inc()
    log.warning("provider %s (%s:%s/%s): poll failed, %s; retrying in %.0f s", regulation.provider, source.host,
                source.port, source.database, what, delay)
    if kind != "kafka":
        poller.readers[regulation.provider].close()  # a fresh connection next time


def run(settings: Settings) -> None:
    """`qoima poller`: poll every marker regulation in the foreground until SIGTERM or Ctrl-C."""
    metrics.serve(settings.ports.poller_metrics, settings.host)
    regulations = [r for r in load_all(settings.regulations_dir, settings.regulation_env()) if r.polled]
    if not regulations:
        raise SystemExit("qoima poller: no regulation declares 'capture: marker'; nothing to poll")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    saved = _wait_for_states(settings.kafka_bootstrap, stop)
    if saved is None:
        return
    environ = settings.regulation_env()
    readers = {r.provider: PolledSource(r, environ) for r in regulations}
    for regulation in regulations:
        tables = ", ".join(f"{t.name} (marker {t.marker})" for t in regulation.tables)
        log.info("provider %s: polling %s every %d s", regulation.provider, tables, regulation.source.poll_seconds)
    try:
        poll_until_stopped(MarkerPoller(regulations, readers, KafkaOutput(settings.kafka_bootstrap), saved), stop)
    except PollerConfigError as exc:
        raise SystemExit(f"qoima poller: {exc}") from None
    finally:
        for reader in readers.values():
            reader.close()


def _wait_for_states(bootstrap: str, stop: threading.Event) -> dict[str, dict[str, Any]] | None:
    """Saved watermarks; Kafka may still be starting, so unreachable is retried, not fatal."""
    failures = 0
    while not stop.is_set():
        try:
            return load_states(bootstrap)
        except PollerConfigError as exc:
            raise SystemExit(f"qoima poller: {exc}") from None
        except PollerError as exc:
            failures += 1
            delay = retry.delay_after(retry.SOURCE_POLL, failures)
            log.warning("%s; retrying in %.0f s", exc, delay)
            stop.wait(delay)
    return None
