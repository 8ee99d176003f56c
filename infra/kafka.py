"""The local Kafka broker (KRaft, one node) and the topics Qoima needs on it.

The broker's storage is formatted once with a fresh cluster id; the topics are created before
anyone reads or writes them, each with the retention its contents call for.
"""
from __future__ import annotations

import base64
import shutil
import subprocess
import uuid

from infra.java import java_command
from infra.ports import port_open
from infra.processes import Managed, Progress, StackError, wait_until
from infra.templates import LOCAL_TEMPLATES, render
from model.names import (ACCESS_TOPIC, DEAD_LETTER_TOPIC, INCIDENT_TOPIC, MARKER_STATE_TOPIC, PROCESSOR_STATE_TOPIC,
                         QUARANTINE_TOPIC, RULES_TOPIC, SCHEMA_TOPIC, WORK_TOPIC, heartbeat_topic)
from model.settings import Settings
from schemas.kafka_clients import admin_config


class LocalKafka:
    def __init__(self, settings: Settings, progress: Progress) -> None:
        self.s = settings
        self.progress = progress
        self.managed = Managed("kafka", settings.run_dir, settings.log_dir / "kafka.log")

    # ---------------------------------------------------------------- broker
    def healthy(self) -> bool:
        from confluent_kafka.admin import AdminClient

        if not port_open(self.s.host, self.s.ports.kafka):
            return False
        admin = AdminClient(admin_config(self.s.kafka_bootstrap, {"socket.timeout.ms": 3000}))
        admin.list_topics(timeout=3)
        return True

    def start(self) -> None:
        if self.managed.pid() and self.healthy():
            self.progress("kafka: already running")
            return
        data = self.s.data_dir / "kafka"
        # Kafka Connect's JVM reads the same log4j configuration (infra/java.py).
        shutil.copy(LOCAL_TEMPLATES / "log4j.properties", self.s.conf_dir / "log4j.properties")
        config = render("kafka-server.properties", self.s.conf_dir / "kafka-server.properties",
                        host=self.s.host, port=self.s.ports.kafka, controller_port=self.s.ports.kafka_controller,
                        data_dir=data)
        if not (data / "meta.properties").exists():
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            self.progress("kafka: formatting KRaft storage")
            # `--cluster-id=`: one id in 64 starts with '-', which a separate argument would make an option.
            result = subprocess.run(java_command(self.s, 256, "kafka.tools.StorageTool", "format",
                                                 f"--cluster-id={cluster_id}", "-c", str(config)),
                                    capture_output=True, text=True)
            if result.returncode != 0:
                raise StackError(f"kafka storage format failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
        self.managed.start(java_command(self.s, self.s.kafka_heap_mb, "kafka.Kafka", str(config)))
        wait_until(self.healthy, 90, "Kafka", self.managed)
        self.progress(f"kafka: up on {self.s.kafka_bootstrap}")

    # ---------------------------------------------------------------- topics
    def create_topics(self, regulations) -> None:
        """Raw, clean and quarantine topics exist before anyone reads or writes them.

        Raw topics hold clear identifiers, so they keep data for one day only; clean and
        quarantine topics keep a week, enough to rebuild the warehouse after an incident.
        """
        from confluent_kafka.admin import AdminClient, NewTopic

        day, week = str(24 * 3600 * 1000), str(7 * 24 * 3600 * 1000)
        wanted = {QUARANTINE_TOPIC: week, DEAD_LETTER_TOPIC: week, INCIDENT_TOPIC: week, ACCESS_TOPIC: week}
        for regulation in regulations:
            for table in regulation.tables:
                wanted[regulation.raw_topic(table)] = day
                wanted[regulation.clean_topic(table)] = week
                wanted[regulation.held_topic(table)] = week
            wanted[heartbeat_topic(regulation.provider)] = day
        admin = AdminClient(admin_config(self.s.kafka_bootstrap))
        topics = admin.list_topics(timeout=10).topics
        existing = set(topics)
        new = [NewTopic(name, num_partitions=1, replication_factor=1, config={"retention.ms": retention})
               for name, retention in wanted.items() if name not in existing]
        # The processor's partitioned topics: the work topic is raw events (a day, like raw
        # topics), the rules topic their claims. Their partition count is fixed once created:
        # a key's work partition keeps its rows' cross-row state.
        partitions = self.s.processor_partitions
        for name in (WORK_TOPIC, RULES_TOPIC):
            if name not in existing:
                new.append(NewTopic(name, num_partitions=partitions, replication_factor=1,
                                    config={"retention.ms": day}))
            elif len(topics[name].partitions) != partitions:
                self.progress(f"kafka: {name} keeps its {len(topics[name].partitions)} partitions "
                              f"(QOIMA_PROCESSOR_PARTITIONS={partitions} applies to a new stack only)")
        if SCHEMA_TOPIC not in existing:
            # Every Avro schema written with, by fingerprint: compacted, kept forever.
            new.append(NewTopic(SCHEMA_TOPIC, num_partitions=1, replication_factor=1,
                                config={"cleanup.policy": "compact"}))
        if PROCESSOR_STATE_TOPIC not in existing:
            # The stateful rules' stores (digests only), written in the processor's transactions;
            # compacted, so a restarted worker reads each key's latest value, kept forever.
            new.append(NewTopic(PROCESSOR_STATE_TOPIC, num_partitions=1, replication_factor=1,
                                config={"cleanup.policy": "compact", "segment.ms": str(3600 * 1000)}))
        if any(r.polled for r in regulations) and MARKER_STATE_TOPIC not in existing:
            # The marker poller's watermarks: one small record per table, the latest kept forever.
            new.append(NewTopic(MARKER_STATE_TOPIC, num_partitions=1, replication_factor=1,
                                config={"cleanup.policy": "compact"}))
        for name, future in admin.create_topics(new).items() if new else []:
            try:
                future.result()
            except Exception as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise StackError(f"cannot create topic {name}: {exc}") from None
