"""The passports' catalog in `qoima_meta`, with versions, readable by analysts (DM385 §17, §22-23, §32).

`record` keeps a new version of a provider's passport when its digest differs from the latest
one's: the regulation changed (general part, life cycle, questionnaire, warehouse side) or the
source's schema did (structure). Old versions stay. Each new version after the first notifies
the users of the provider's tables through their `notify:` targets (§32), by the notifier's
outbox (governance/notifier.py): event `passport_changed`, with what changed, never a value.

Tables (sinks/ddl.py `PASSPORT_SQL`): `qoima_meta.passports` (one row per version: digests,
reason, the whole document as JSON), `qoima_meta.passport_structure` (the structure description
per version, Appendix 1's columns) and `qoima_meta.passport_warehouse` (the warehouse side).
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

from governance.incident_journal import now_ms
from governance.notifier import ClickHouseOutbox, Notification, targets_for
from governance.passport.document import STRUCTURE_COLUMNS, WAREHOUSE_COLUMNS, PassportDocument
from model.names import PASSPORT_STRUCTURE_TABLE, PASSPORT_WAREHOUSE_TABLE, PASSPORTS_TABLE
from model.regulation import Regulation

log = logging.getLogger("qoima.passport")

PASSPORT_CHANGED = "passport_changed"


@dataclass(frozen=True)
class Recorded:
    version: int
    new: bool
    reason: str
    changes: list[str]


def latest(client, provider: str) -> tuple[int, str, str, dict] | None:
    """(version, regulation digest, structure digest, document) of the latest version."""
    rows = client.query(f"SELECT version, regulation_digest, structure_digest, document FROM {PASSPORTS_TABLE} FINAL "
                        "WHERE provider = {p:String} ORDER BY version DESC LIMIT 1", parameters={"p": provider}).result_rows
    if not rows:
        return None
    version, regulation_digest, structure_digest, document = rows[0]
    return int(version), regulation_digest, structure_digest, json.loads(document)


def changes(before: dict, after: PassportDocument) -> list[str]:
    """What differs, in words: columns added, removed or changed at the source; parts of the
    general part changed; warehouse treatments changed. Names and types only."""
    found = []

    def by_column(rows: list[dict], table_key: str, column_key: str) -> dict:
        return {(row[table_key], row[column_key]): row for row in rows}

    old = by_column([{**r, "t": f"{r['schema_name']}.{r['table_name']}"} for r in before.get("structure", [])],
                    "t", "column_name")
    new = by_column([{**r, "t": f"{r['schema_name']}.{r['table_name']}"} for r in after.structure], "t", "column_name")
    for key in sorted(new.keys() - old.keys()):
        found.append(f"column {key[0]}.{key[1]} added at the source ({new[key]['column_type']})")
    for key in sorted(old.keys() - new.keys()):
        found.append(f"column {key[0]}.{key[1]} no longer at the source")
    for key in sorted(new.keys() & old.keys()):
        differing = [c for c in STRUCTURE_COLUMNS if c not in ("id", "column_id") and old[key][c] != new[key][c]]
        if differing:
            found.append(f"column {key[0]}.{key[1]}: {', '.join(differing)} changed")
    for part in ("general", "life_cycle", "questionnaire"):
        if before.get(part) != getattr(after, part):
            found.append(f"the {part.replace('_', ' ')} changed")
    old_w = by_column(before.get("warehouse", []), "source_table", "source_column")
    new_w = by_column(after.warehouse, "source_table", "source_column")
    for key in sorted(new_w.keys() & old_w.keys()):
        if old_w[key]["treatment"] != new_w[key]["treatment"]:
            found.append(f"column {key[0]}.{key[1]}: {old_w[key]['treatment']} -> {new_w[key]['treatment']}")
    return found


def record(client, regulation: Regulation, document: PassportDocument) -> Recorded:
    """Keep the document as a new version if it differs from the latest; notify on a change."""
    previous = latest(client, regulation.provider)
    if previous is not None and (previous[1], previous[2]) == (document.regulation_digest, document.structure_digest):
        return Recorded(previous[0], False, "", [])
    version = 1 if previous is None else previous[0] + 1
    if previous is None:
        reason, changed = "first version", []
    else:
        parts = [what for what, moved in (("the regulation", previous[1] != document.regulation_digest),
                                          ("the source's schema", previous[2] != document.structure_digest)) if moved]
        reason, changed = " and ".join(parts) + " changed", changes(previous[3], document)
    created = now_ms()
    if previous is not None:
        # Before the version itself: a crash in between must not leave a version nobody was told
        # of (the next round finds no difference). The ids are the version's and the document's,
        # so a retry of the same document adds none twice, and a different one is told anew.
        notify(client, regulation, version, f"{document.regulation_digest}/{document.structure_digest}",
               reason, changed, created)
    client.insert(PASSPORTS_TABLE, [[regulation.provider, version, document.digest(), document.regulation_digest,
                                     document.structure_digest, reason, "\n".join(changed),
                                     json.dumps(document.as_json(), ensure_ascii=False, default=str), created]],
                  column_names=["provider", "version", "digest", "regulation_digest", "structure_digest", "reason",
                                "changes", "document", "created_ts"])
    client.insert(PASSPORT_STRUCTURE_TABLE, [[regulation.provider, version, *[row[c] for c in STRUCTURE_COLUMNS]]
                                             for row in document.structure],
                  column_names=["provider", "version", *STRUCTURE_COLUMNS])
    client.insert(PASSPORT_WAREHOUSE_TABLE, [[regulation.provider, version, *[row[c] for c in WAREHOUSE_COLUMNS]]
                                             for row in document.warehouse],
                  column_names=["provider", "version", *WAREHOUSE_COLUMNS])
    log.info("passport of %s: version %d (%s)%s", regulation.provider, version, reason,
             "".join(f"; {c}" for c in changed))
    return Recorded(version, True, reason, changed)


def notify(client, regulation: Regulation, version: int, digests: str, reason: str, changed: list[str],
           created) -> int:
    """A `passport_changed` notification to every notify target of the provider's tables."""
    urls = sorted({url for (provider, _), targets in targets_for([regulation]).items() for url in targets
                   if provider == regulation.provider})
    body = json.dumps({"event": PASSPORT_CHANGED, "provider": regulation.provider,
                       "information_system": regulation.information_system, "version": version, "reason": reason,
                       "changes": changed}, ensure_ascii=False, sort_keys=True)
    key = f"passport/{regulation.provider}"
    outbox = ClickHouseOutbox(client)
    ids = {url: hashlib.sha256(f"{key}\n{version}\n{digests}\n{url}".encode()).hexdigest()[:32] for url in urls}
    known = outbox.existing(list(ids.values()))
    fresh = [Notification(ids[url], key, PASSPORT_CHANGED, url, body, created, next_attempt_ts=created)
             for url in urls if ids[url] not in known]
    outbox.add(fresh)
    return len(fresh)


def refresh(client, regulation: Regulation, environ: dict[str, str], key_id: str) -> Recorded | None:
    """The passport from the live source, recorded if changed; None when the source's catalog
    cannot be read (a passport from the declaration alone would look like a schema change)."""
    from governance.passport.document import build, read_sources

    sources = read_sources(regulation, environ)
    if any(source is None for source in sources.values()):
        missing = [name for name, source in sources.items() if source is None]
        log.warning("passport of %s not refreshed: the capture account cannot see %s", regulation.provider,
                    ", ".join(missing))
        return None
    return record(client, regulation, build(regulation, sources, key_id))
