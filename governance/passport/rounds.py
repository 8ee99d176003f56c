"""When the catalog is brought up to date: on each assessor round, and when a regulation is
applied. Each step's failure is logged and waits for the next round; none stops the others."""
from __future__ import annotations

import logging
from collections.abc import Iterable

from governance.incident_journal import ACKNOWLEDGED, OPEN, IncidentJournal
from governance.passport import catalog, lineage, usage
from governance.quality_assessment import Assessment
from model.regulation import Regulation
from model.settings import Settings
from monitoring import metrics

log = logging.getLogger("qoima.passport")


def _failed(step: str, exc: Exception) -> None:
    log.warning("%s failed (%s: %s); next round", step, type(exc).__name__,
                str(exc).splitlines()[0][:200] if str(exc) else "")


def refresh_passport(client, settings: Settings, regulation: Regulation) -> catalog.Recorded | None:
    recorded = catalog.refresh(client, regulation, settings.regulation_env(), settings.key_id)
    if recorded is not None:
        metrics.PASSPORT_VERSION.labels(regulation.provider).set(recorded.version)
    return recorded


def assessor_round(client, settings: Settings, regulations: list[Regulation],
                   assessments: Iterable[Assessment] = ()) -> None:
    """Passports refreshed from the live sources (a schema change makes a new version), usage
    counted, and the quality rules' assertions with the round's `assessments` sent as lineage."""
    from model.regulation import RegulationError, load_all

    # The passports from the regulation files as they are now, as `qoima passport` reads them:
    # a process started before an edit would otherwise record the old one back as a new version.
    try:
        current = load_all(settings.regulations_dir, settings.regulation_env())
    except RegulationError as exc:
        _failed("passports (a regulation file does not load)", exc)
        current = []
    for regulation in current:
        try:
            refresh_passport(client, settings, regulation)
        except Exception as exc:  # a source that does not answer: its passport waits
            _failed(f"passport of {regulation.provider}", exc)
    try:
        usage.refresh(client, settings.usage_accounts, regulations)
    except Exception as exc:
        _failed("usage statistics", exc)
    try:
        failing = {(i.provider, i.table or "", i.rule) for i in IncidentJournal(client).list()
                   if i.status in (OPEN, ACKNOWLEDGED)}
        lineage.emit(settings, [e for r in regulations
                                for e in lineage.assessment_events(settings, r, failing, assessments)])
    except Exception as exc:
        _failed("lineage of the assessment", exc)


def on_apply(settings: Settings, regulations: list[Regulation]) -> None:
    """A regulation brought into the stack: its lineage, and its passport's new version if it changed."""
    from sinks.clickhouse_users import writer_client

    try:
        lineage.emit(settings, [e for r in regulations for e in lineage.flow_events(settings, r)])
    except Exception as exc:
        _failed("lineage of the regulations", exc)
    try:
        client = writer_client(settings)
    except Exception as exc:
        _failed("passports", exc)
        return
    for regulation in regulations:
        try:
            refresh_passport(client, settings, regulation)
        except Exception as exc:
            _failed(f"passport of {regulation.provider}", exc)
