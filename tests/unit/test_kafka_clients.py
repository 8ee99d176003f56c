"""Kafka client configurations (schemas/kafka_clients.py): the defaults every site relies on."""
from __future__ import annotations

from schemas.kafka_clients import admin_config, consumer_config, producer_config


def test_consumer_commits_only_when_told() -> None:
    assert consumer_config("k:9092", "g") == {"bootstrap.servers": "k:9092", "group.id": "g",
                                              "enable.auto.commit": False}


def test_consumer_extra_adds_and_overrides() -> None:
    config = consumer_config("k:9092", "g", {"isolation.level": "read_committed", "enable.auto.commit": True})
    assert config["isolation.level"] == "read_committed" and config["enable.auto.commit"] is True


def test_producer_is_acks_all_and_idempotent_by_default() -> None:
    assert producer_config("k:9092") == {"bootstrap.servers": "k:9092", "acks": "all", "enable.idempotence": True}


def test_producer_options() -> None:
    assert producer_config("k:9092", idempotent=False) == {"bootstrap.servers": "k:9092", "acks": "all",
                                                           "enable.idempotence": False}
    config = producer_config("k:9092", client_id="qoima-x", extra={"linger.ms": 20})
    assert config["client.id"] == "qoima-x" and config["linger.ms"] == 20 and config["enable.idempotence"] is True


def test_admin() -> None:
    assert admin_config("k:9092") == {"bootstrap.servers": "k:9092"}
    assert admin_config("k:9092", {"socket.timeout.ms": 3000})["socket.timeout.ms"] == 3000
