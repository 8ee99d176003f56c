"""In-flight processing: Debezium decoding, depersonalization, Avro encoding, routing."""
