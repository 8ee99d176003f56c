"""Quality rules across rows, judged by key so that any number of workers gives the same verdicts.

Uniqueness, integrity and consistency against a reference table compare a row with other rows,
which another worker may be processing. So they run in two steps, joined by the topic
`qoima.processor-rules`, the way a foreign-key join runs in Kafka Streams:

1. `claims`: where the row is routed (its work partition, by its primary key), the row's values
   become claims keyed by what they are compared on: a uniqueness rule's value digest, an
   integrity rule's referenced-key digest, a consistency rule's match digest. The same step
   remembers, per row, what the row claimed last (`owners`), so an update that changes a value,
   or a delete, withdraws the old claim where it was made.
2. `judge`: claims with one key land in one rules partition, whichever worker sent them, and
   its worker keeps the state of those keys (`values`, `references`, `pending`) and reports what
   breaks a rule as incidents.

Claims hold keyed digests, row-key digests and the row's depersonalized clean key (a sample for
the incident), never a clear value. A cross-row verdict is an incident, not a routing decision
(`model/rules.py` accepts only action `flag` for these rules): the row itself is loaded when it
arrives, and its duplicate or its missing reference is reported once the judge has seen the
claims of both rows. docs/design.md, "Scale-out", has the reasons and the limits.
"""
