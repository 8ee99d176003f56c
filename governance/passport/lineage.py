"""OpenLineage events for each provider and table (R394 Appendix 2: where each data object
originates and how it spreads), through openlineage-python.

Per regulated table, three jobs in namespace `qoima` chain its datasets:
- `<provider>.capture.<schema.table>`: the source table -> its raw topic (Debezium or the poller);
- `<provider>.process.<schema.table>`: the raw topic -> the clean topic, with column lineage whose
  transformations carry `masking: true` for hashed, generalized and redacted columns (dropped
  columns have no output, so no lineage);
- `<provider>.load.<schema.table>`: the clean topic -> the warehouse table.
They are emitted when a regulation is applied (`qoima up`, `qoima provider apply`). On each
assessment a fourth, `<provider>.assess.<schema.table>`, reads the warehouse table with a
data-quality assertions facet: one assertion per quality rule, failed while the rule has an
open incident.

Datasets are named as OpenLineage's naming spec says: `postgres://host:port` with
`database.schema.table`, `mysql://host:port` with `database.table`, `kafka://host:port` with the
topic, `clickhouse://host:port` with `database.table`. Where events go is QOIMA_LINEAGE_TRANSPORT
(model/settings.py): a file (JSON lines), a Kafka topic, an HTTP endpoint, or none.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timezone

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.uuid import generate_new_uuid
from openlineage.client.facet_v2 import (column_lineage_dataset, data_quality_assertions_dataset,
                                         documentation_dataset, schema_dataset)

from governance.passport.document import safe_text
from governance.quality_assessment import Assessment, Indicator
from model.regulation import Action, Regulation, Table
from model.settings import Settings

log = logging.getLogger("qoima.lineage")

NAMESPACE = "qoima"
PRODUCER = "https://github.com/qoima/qoima"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def source_dataset(regulation: Regulation, table: Table) -> tuple[str, str]:
    source = regulation.source
    if source.dbms == "mariadb":
        return f"mysql://{source.host}:{source.port}", f"{table.schema_name}.{table.table_name}"
    return f"postgres://{source.host}:{source.port}", f"{source.database}.{table.schema_name}.{table.table_name}"


def _schema(fields: list[tuple[str, str, str]]) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(fields=[
        # Descriptions as the catalog keeps them: an example identifier in one is withheld.
        schema_dataset.SchemaDatasetFacetFields(name=name, type=kind, description=safe_text(description) or None)
        for name, kind, description in fields])


def _source_fields(table: Table) -> list[tuple[str, str, str]]:
    return [(c.source_column, c.type, c.description) for c in table.columns]


def _output_fields(table: Table) -> list[tuple[str, str, str]]:
    return [(c.output_name, c.output_types[1], c.description) for c in table.columns if c.output_name]


def _lineage(table: Table, namespace: str, name: str, masked: bool) -> column_lineage_dataset.ColumnLineageDatasetFacet:
    fields = {}
    for column in table.columns:
        if not column.output_name:
            continue
        changed = masked and column.action is not Action.keep
        what = {Action.hash: f"keyed pseudonym ({column.kind.value if column.kind else ''})",
                Action.generalize: f"generalized to {column.to.value if column.to else ''}",
                Action.redact: "identifiers redacted"}.get(column.action, "kept")
        source = column.source_column if masked else column.output_name
        fields[column.output_name] = column_lineage_dataset.Fields(inputFields=[column_lineage_dataset.InputField(
            namespace=namespace, name=name, field=source, transformations=[column_lineage_dataset.Transformation(
                type="DIRECT", subtype="TRANSFORMATION" if changed else "IDENTITY",
                description=what if changed else None, masking=changed)])])
    return column_lineage_dataset.ColumnLineageDatasetFacet(fields=fields)


def _event(job: str, inputs: list, outputs: list) -> RunEvent:
    return RunEvent(eventType=RunState.COMPLETE, eventTime=_now(), run=Run(runId=str(generate_new_uuid())),
                    job=Job(namespace=NAMESPACE, name=job), producer=PRODUCER, inputs=inputs, outputs=outputs)


def flow_events(settings: Settings, regulation: Regulation) -> list[RunEvent]:
    """The capture, process and load events of each of the regulation's tables."""
    kafka = f"kafka://{settings.kafka_bootstrap}"
    clickhouse = f"clickhouse://{settings.host}:{settings.ports.clickhouse_http}"
    events = []
    for table in regulation.tables:
        source_ns, source_name = source_dataset(regulation, table)
        raw, clean = regulation.raw_topic(table), regulation.clean_topic(table)
        warehouse = f"udw.{regulation.warehouse_table(table)}"
        described = {"documentation": documentation_dataset.DocumentationDatasetFacet(
            description=safe_text(table.description))} if table.description else {}
        events.append(_event(f"{regulation.provider}.capture.{table.name}",
                             [InputDataset(source_ns, source_name, facets={"schema": _schema(_source_fields(table)),
                                                                           **described})],
                             [OutputDataset(kafka, raw, facets={"schema": _schema(_source_fields(table))})]))
        events.append(_event(f"{regulation.provider}.process.{table.name}", [InputDataset(kafka, raw)],
                             [OutputDataset(kafka, clean, facets={
                                 "schema": _schema(_output_fields(table)),
                                 "columnLineage": _lineage(table, kafka, raw, masked=True)})]))
        events.append(_event(f"{regulation.provider}.load.{table.name}", [InputDataset(kafka, clean)],
                             [OutputDataset(clickhouse, warehouse, facets={
                                 "schema": _schema(_output_fields(table)),
                                 "columnLineage": _lineage(table, kafka, clean, masked=False), **described})]))
    return events


def _indicator(indicator: Indicator) -> data_quality_assertions_dataset.Assertion:
    # An indicator is the share of rows that pass (DM385 §53-55); the assertion is that all do.
    return data_quality_assertions_dataset.Assertion(
        assertion=f"indicator.{indicator.indicator}", success=indicator.value >= 1.0,
        column=indicator.column or None, name=f"{indicator.indicator}{'.' + indicator.column if indicator.column else ''}",
        expected="1", actual=f"{indicator.value:.6g}",
        description=f"quality indicator {indicator.indicator}: share of {indicator.rows} rows that pass")


def assessment_events(settings: Settings, regulation: Regulation, failing: set[tuple[str, str, str]],
                      assessments: Iterable[Assessment] = ()) -> list[RunEvent]:
    """Each table's quality rules as assertions on its warehouse table, then the indicators of
    its latest assessment (governance/quality_assessment.py); `failing` holds the
    (provider, table, rule) of rules with an open incident."""
    clickhouse = f"clickhouse://{settings.host}:{settings.ports.clickhouse_http}"
    measured = {a.table: a for a in assessments if a.provider == regulation.provider}
    events = []
    for table in regulation.tables:
        latest = measured.get(table.name)
        if not table.rules and latest is None:
            continue
        assertions = [data_quality_assertions_dataset.Assertion(
            assertion=rule.kind.value, success=(regulation.provider, table.name, rule.name) not in failing,
            column=getattr(rule, "column", None), name=rule.name, severity=getattr(rule, "action", None) and
            str(getattr(rule.action, "value", rule.action))) for rule in table.rules]
        assertions += [_indicator(i) for i in (latest.indicators if latest else ())]
        events.append(_event(f"{regulation.provider}.assess.{table.name}", [InputDataset(
            clickhouse, f"udw.{regulation.warehouse_table(table)}", inputFacets={
                "dataQualityAssertions": data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
                    assertions=assertions)})], []))
    return events


def transport(settings: Settings):
    """The transport QOIMA_LINEAGE_TRANSPORT names; None for `none`."""
    spec = settings.lineage_transport
    if spec == "none":
        return None
    if spec.startswith(("http://", "https://")):
        from openlineage.client.transport.http import HttpConfig, HttpTransport

        return HttpTransport(HttpConfig(url=spec, timeout=5.0))
    if spec.startswith("kafka:"):
        from openlineage.client.transport.kafka import KafkaConfig, KafkaTransport

        return KafkaTransport(KafkaConfig(config={"bootstrap.servers": settings.kafka_bootstrap},
                                          topic=spec.split(":", 1)[1], flush=True))
    from openlineage.client.transport.file import FileConfig, FileTransport

    path = settings.lineage_file
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileTransport(FileConfig(log_file_path=str(path), append=True))


_clients: dict[str, OpenLineageClient | None] = {}


def emit(settings: Settings, events: list[RunEvent]) -> int:
    """Send the events; how many were sent (0 with transport `none`). One client per transport
    and process, kept: the assessor emits every round."""
    spec = settings.lineage_transport if settings.lineage_transport != "file" else f"file:{settings.lineage_file}"
    if spec not in _clients:
        chosen = transport(settings)
        _clients[spec] = None if chosen is None else OpenLineageClient(transport=chosen)
    client = _clients[spec]
    if client is None or not events:
        return 0
    for event in events:
        client.emit(event)
    return len(events)
