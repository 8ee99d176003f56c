"""Load side: ClickHouse DDL derived from the regulation, and the batching Kafka-to-ClickHouse sink."""
