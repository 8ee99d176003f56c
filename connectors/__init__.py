"""Capture: the Debezium connector configs (debezium/), the Kafka Connect client, the marker-mode
poller (marker/), the source reader, the historical files, and the regulation files (regulations/)."""
