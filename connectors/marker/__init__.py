"""Marker mode (DM385 §63): a source where logical replication cannot be enabled, polled.

A regulation with `capture: marker` names, per table, a `marker` column that increases with
every change of a row (an `updated_at timestamptz`, or a bigint fed by a sequence on every
write) and optionally a `deleted_flag` boolean column. The poller reads each table in
keyset order `(marker, primary key)` and produces to the table's raw topic the very JSON
envelope Debezium would have produced for the row (values put into Debezium's form by
`connectors/debezium_encode.py`, the path historical loads use), so the processor, the sink and the
warehouse cannot tell the two apart except by `_version`, `_op` and `_source_ts`.

The parts, in the order a poll uses them:
- table.py: a table's fixed facts and marker arithmetic (`MarkerTable`);
- source.py: what the poller asks the source, answered by connectors/source_reader.py;
- envelope.py: a row as Debezium's envelope;
- producer.py: the Kafka producer;
- state.py: the watermarks, stored in and restored from `qoima.marker-state`;
- poller.py: one poll (`MarkerPoller`); scheduler.py: the loop and `qoima poller` (`run`);
- errors.py: which failures are retried and what they may say.

Decisions (docs/design.md, "Marker mode", has the reasoning):
- The envelope's `source.lsn` is the marker itself: microseconds since 1970 for a timestamp
  marker, the value for an integer one (0 below zero). It only names the version the poller
  read; the warehouse's `_version` is the raw event's offset (streams/versions.py), so a later
  read of a row wins whatever its marker says.
- `op` is `r` during the first full pass of a table, `u` afterwards (an insert cannot be told
  from an update by a marker), `d` for a row whose `deleted_flag` is true and for a key the
  optional reconciliation no longer finds at the source. The processor treats r/c/u alike.
- Resume needs no local state: after the events of a page are flushed, the table's watermark
  goes to the compacted topic `qoima.marker-state`. A crash in between re-produces rows with
  the versions they had (deduplicated downstream), it never skips one.
- Late commits: a transaction may commit after rows with newer markers were read. Each poll
  re-reads from `watermark - lookback` (rows already produced with the same marker are skipped
  in memory), and a timestamp marker is read only up to the source's `now() - safety lag`, so
  a future-dated row cannot push the watermark past rows still to come.
- Hard deletes are invisible to polling; `reconcile_every` compares the source's keys with
  the keys produced and not deleted since the poller started (kept in memory: only primary
  keys, rebuilt from the source at start), and produces a delete for each one gone.

Nothing here logs a row value: messages name providers, tables, columns and exception types.
"""
