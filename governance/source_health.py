"""Source safety: what capture costs each provider's database, and whether capture runs.

A PostgreSQL replication slot keeps every WAL segment its reader has not confirmed: if the
connector stops, or falls behind, the provider's disk fills with WAL, and a state body's
production database stops. So a thread of the assessor asks, every `INTERVAL_S`:

- each PostgreSQL source, as its capture account: is the provider's slot active (someone reads
  it) and how many bytes of WAL it holds back (`pg_replication_slots`, readable by any role);
- each MariaDB source: how much binary log the server has written past the position the
  connector last committed (`SHOW BINARY LOGS` against Connect's offsets). MariaDB keeps its
  binlog by its own retention whatever Qoima reads, so its disk is not at risk; the changes are:
  a connector further behind than the retention loses them;
- Kafka Connect: is the provider's connector, and each of its tasks, not FAILED (and there);
- Kafka: does the cluster answer. A stopped broker (a full disk stops Kafka) moves no change
  anywhere and no Qoima process fails for it, while every slot keeps its WAL at the source.

The answers are gauges per provider (Kafka's, one), never a value of the data, and the alert
rules QoimaReplicationSlotWalHigh, QoimaReplicationSlotInactive, QoimaBinlogLagHigh,
QoimaConnectorFailed and QoimaKafkaDown act on them (monitoring/alerts.yml; docs/operations.md says what to do).
Marker-mode sources have no connector. A source that does not answer leaves its gauges as they were and logs why: the
check runs again in `INTERVAL_S`, and a source that is down is the provider's own alarm.

The same round exports the requested loads' records (`qoima snapshot`) as gauges: a load's
estimate, request time and pause, beside the rows loaded that the sink counts.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from connectors.connect_client import ConnectClient, ConnectError
from connectors.snapshot import recorded_loads
from connectors.source_reader import SourceReader
from model.regulation import Regulation
from model.settings import Settings
from monitoring import metrics
from schemas.kafka_clients import admin_config

log = logging.getLogger("qoima.source-health")

INTERVAL_S = 15.0
KAFKA_TIMEOUT_S = 5.0


def connector_failed(client: ConnectClient, name: str) -> bool:
    """Whether the connector or one of its tasks is FAILED, or Connect does not have it (or
    does not answer: then nothing captures either)."""
    try:
        status = client.status(name)
    except ConnectError as exc:
        log.warning("connector %s: %s", name, exc)
        return True
    states = [status.get("connector", {}).get("state"), *(task.get("state") for task in status.get("tasks", []))]
    return "FAILED" in states


def kafka_answers(admin: AdminClient) -> bool:
    """Whether the cluster answers a metadata request within `KAFKA_TIMEOUT_S`."""
    try:
        admin.list_topics(timeout=KAFKA_TIMEOUT_S)
    except KafkaException as exc:
        log.warning("Kafka does not answer (%s)", exc.args[0].name() if exc.args else exc)
        return False
    return True


def binlog_lag(files: list[tuple[str, int]], file: str, position: int) -> int:
    """Bytes of binary log after (`file`, `position`), given the server's logs (name, size) oldest
    first. A file the server no longer has counts as all of them: at least that far behind."""
    names = [name for name, _ in files]
    if file not in names:
        return sum(size for _, size in files)
    at = names.index(file)
    return max(0, files[at][1] - position) + sum(size for _, size in files[at + 1:])


def _binlog_position(client: ConnectClient, name: str) -> tuple[str, int] | None:
    for entry in client.offsets(name):
        offset = entry.get("offset") or {}
        if "file" in offset and "pos" in offset:
            return str(offset["file"]), int(offset["pos"])
    return None   # nothing committed yet


def _clear(provider: str, *gauges) -> None:
    for gauge in gauges:
        try:
            gauge.remove(provider)
        except KeyError:
            pass


def check(regulations: list[Regulation], readers: dict[str, SourceReader], client: ConnectClient) -> None:
    """One round over every change-data-capture provider."""
    for regulation in regulations:
        if regulation.polled:
            continue  # marker mode: no slot, no connector
        provider = regulation.provider
        metrics.CONNECTOR_FAILED.labels(provider).set(1 if connector_failed(client, regulation.connector_name) else 0)
        reader = readers.get(provider)
        if reader is None:
            continue
        if regulation.source.dbms == "mariadb":
            _mariadb(regulation, reader, client)
            continue
        try:
            slot = reader.slot(regulation.slot_name)
        except Exception as exc:  # the source may be down or restarting: the next round asks again
            log.warning("provider %s: replication slot not read (%s)", provider, type(exc).__name__)
            reader.close()
            continue
        if slot is None:
            # No slot keeps no WAL: nothing to watch (the connector creates it; a connector
            # that cannot is QoimaConnectorFailed's business).
            _clear(provider, metrics.SLOT_ACTIVE, metrics.SLOT_RETAINED_BYTES)
            continue
        active, retained = slot
        metrics.SLOT_ACTIVE.labels(provider).set(1 if active else 0)
        metrics.SLOT_RETAINED_BYTES.labels(provider).set(retained)


def _mariadb(regulation: Regulation, reader: SourceReader, client: ConnectClient) -> None:
    provider = regulation.provider
    try:
        position = _binlog_position(client, regulation.connector_name)
        files = reader.binlog_files() if position is not None else []
    except ConnectError as exc:
        log.warning("provider %s: connector offsets not read (%s)", provider, exc)
        return
    except Exception as exc:  # the source may be down or restarting: the next round asks again
        log.warning("provider %s: binary logs not read (%s)", provider, type(exc).__name__)
        reader.close()
        return
    if position is None:
        _clear(provider, metrics.BINLOG_LAG_BYTES)   # no position committed yet: no lag to speak of
        return
    if position[0] not in {name for name, _ in files}:
        log.warning("provider %s: the connector's binary log %s is no longer on the server", provider, position[0])
    metrics.BINLOG_LAG_BYTES.labels(provider).set(binlog_lag(files, *position))


def export_loads(loads_dir: Path, now_ms: int) -> None:
    """The requested loads' estimates, request times and pauses as gauges (the latest load of a
    table wins): what a dashboard needs beside the rows loaded to show the rows remaining."""
    for load in recorded_loads(loads_dir, now_ms):   # oldest first
        paused = 1 if "paused_ms" in load else 0
        for table, estimate in load["tables"].items():
            labels = (load["provider"], table)
            if estimate is not None:
                metrics.LOAD_ESTIMATE.labels(*labels).set(estimate)
            metrics.LOAD_REQUESTED.labels(*labels).set(load["requested_ms"] / 1000)
            metrics.LOAD_PAUSED.labels(*labels).set(paused)


def run(settings: Settings, regulations: list[Regulation], stop: threading.Event, interval: float) -> None:
    environ = settings.regulation_env()
    # Autocommit: a monitoring session must never sit idle in a transaction at the provider.
    readers = {r.provider: SourceReader(r, environ, timeout_ms=10_000, application="qoima-source-health",
                                        autocommit=True)
               for r in regulations if not r.polled}
    client = ConnectClient(settings.connect_url)
    try:
        while not stop.is_set():
            try:
                check(regulations, readers, client)
                export_loads(settings.run_dir / "loads", int(time.time() * 1000))
            except Exception:   # a bug of ours must not end the watch for good: logged, next round
                log.exception("source health round failed")
            stop.wait(interval)
    finally:
        for reader in readers.values():
            reader.close()


def watch_kafka(settings: Settings, stop: threading.Event, interval: float) -> None:
    """`qoima_kafka_up` every `interval`, in a thread of its own: a round over the providers can
    wait 30 s on a Connect that waits on the missing broker."""
    admin = AdminClient(admin_config(settings.kafka_bootstrap))
    while not stop.is_set():
        metrics.KAFKA_UP.set(1 if kafka_answers(admin) else 0)
        stop.wait(interval)


def start(settings: Settings, regulations: list[Regulation], stop: threading.Event,
          interval: float = INTERVAL_S) -> threading.Thread:
    threading.Thread(target=watch_kafka, args=(settings, stop, interval), name="qoima-kafka-health",
                     daemon=True).start()
    thread = threading.Thread(target=run, args=(settings, regulations, stop, interval), name="qoima-source-health",
                              daemon=True)
    thread.start()
    return thread
