"""Capture side: interaction regulations, Debezium connector configs, the Kafka Connect client."""
