"""The assessor process: periodic assessments over the warehouse, exported as metrics.

Every `QOIMA_ASSESS_INTERVAL_S` it measures, per regulated table:
- re-identification risk (k-anonymity, l-diversity); a table falling below its threshold opens
  an incident once, and another when it recovers is not needed: the incident's life cycle
  records the fix;
- the quality indicators (DM385 §53-55, governance/quality_assessment.py), recorded in
  `qoima_meta.quality_assessments` and exported as gauges;
- coverage, source rows against warehouse rows (governance/coverage.py); a gap beyond the
  table's tolerance on two consecutive rounds opens a coverage incident.
Threads of this process also deliver incident notifications (governance/notifier.py) and
PD236 access events (governance/pd236/reporter.py), and watch what capture costs the sources
(governance/source_health.py), every few seconds, and pause a table's load while the processor's
backlog is deep (governance/load_governor.py).
"""
from __future__ import annotations

import logging
import signal
import threading

from model.regulation import Regulation, load_all
from governance import coverage, load_governor, notifier, quality_assessment, source_health
from governance.passport import rounds
from governance.pd236 import reporter
from monitoring import metrics
from governance.reidentification import Risk, assess, detection
from governance.silence import SilenceWatch, last_commit
from model.settings import Settings
from sinks.clickhouse_users import writer_client
from schemas.incidents import IncidentPublisher

log = logging.getLogger("qoima.assessor")


def export(risk: Risk) -> None:
    label = risk.table
    metrics.K_ANONYMITY.labels(label).set(risk.k)
    metrics.K_THRESHOLD.labels(label).set(risk.k_threshold)
    metrics.ROWS_AT_RISK.labels(label).set(risk.rows_at_risk)
    if risk.l_diversity is not None:
        metrics.L_DIVERSITY.labels(label).set(risk.l_diversity)


def assess_quality(client, regulations: list[Regulation]) -> list[quality_assessment.Assessment]:
    """One quality assessment of every table, recorded and exported (failures are logged); the
    assessments."""
    assessments, _ = quality_assessment.assess_all(client, regulations)
    for assessment in assessments:
        quality_assessment.export(assessment)
    try:
        quality_assessment.ensure_table(client)
        quality_assessment.record(client, assessments)
    except Exception as exc:  # the gauges are set; the record waits for the next round
        log.warning("quality assessment not recorded (%s)", type(exc).__name__)
    return assessments


def check_coverage(client, regulations: list[Regulation], environ: dict[str, str],
                   watch: coverage.CoverageWatch, publisher: IncidentPublisher) -> None:
    """One coverage round: counts exported, a lasting gap published as an incident."""
    for measured in coverage.measure(client, regulations, environ):
        coverage.export(measured)
        found = watch.observe(measured)
        if found is None:
            continue
        try:
            publisher.publish(found)
            log.warning("coverage: %s: %s", measured.table, found.detail)
        except Exception as exc:
            log.warning("coverage incident of %s not recorded (%s); retrying next round",
                        measured.table, type(exc).__name__)
            watch.forget(measured)


def check_silence(client, regulations: list[Regulation], watch: SilenceWatch,
                  publisher: IncidentPublisher) -> None:
    for regulation in regulations:
        try:
            last = last_commit(client, regulation)
        except Exception as exc:  # the warehouse may be starting; next round
            log.warning("source silence of %s not checked (%s)", regulation.provider, type(exc).__name__)
            continue
        if last is not None:
            metrics.SOURCE_LAST_COMMIT.labels(regulation.provider).set(last)
        found = watch.observe(regulation, last)
        if found is not None:
            publisher.publish(found)
            log.warning("source silent: %s", found.detail)


def run(settings: Settings) -> None:
    metrics.serve(settings.ports.assessor_metrics, settings.host)
    regulations = load_all(settings.regulations_dir, settings.regulation_env())
    client = writer_client(settings)
    publisher = IncidentPublisher(settings.kafka_bootstrap)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # Incident notifications (DM385 §49) every few seconds, whatever the assessment interval.
    notifier.start(settings, regulations, stop)
    # Replication slots and connectors every 15 s: a stopped connector fills the source's disk.
    source_health.start(settings, regulations, stop)
    # A table's load paused while the processor's backlog is deep (governance/load_governor.py).
    load_governor.start(settings, regulations, stop)
    # PD236 access events to the state service (docs/pd236.md), through their outbox.
    reporter.start(settings, stop)
    below: set[str] = set()
    watch = coverage.CoverageWatch()
    silence = SilenceWatch()
    environ = settings.regulation_env()
    # The first round waits a little: right after `qoima up` the snapshot is still on its way,
    # and an assessment of empty tables would stand for a whole interval.
    stop.wait(min(settings.assess_interval_s, 30))
    while not stop.is_set():
        for regulation in regulations:
            for table in regulation.tables:
                try:
                    risk = assess(client, regulation, table)
                except Exception as exc:  # the warehouse may be starting; try again next round
                    log.warning("risk assessment of %s failed (%s)", table.name, type(exc).__name__)
                    continue
                if risk is None:
                    continue
                export(risk)
                if risk.below_threshold and table.name not in below:
                    publisher.publish(detection(risk))
                    log.warning("re-identification risk: %s", detection(risk).detail)
                    below.add(table.name)
                elif not risk.below_threshold:
                    below.discard(table.name)
        assessments = assess_quality(client, regulations)
        check_coverage(client, regulations, environ, watch, publisher)
        check_silence(client, regulations, silence, publisher)
        # The catalog (DM385 §13, §17, §32): passports, usage statistics, lineage of the assessment.
        rounds.assessor_round(client, settings, regulations, assessments)
        stop.wait(settings.assess_interval_s)
