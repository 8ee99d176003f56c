"""Timeliness at the source (DM385 §49): a provider silent longer than its declared refresh.

The newest source commit time that reached the warehouse for any of a provider's tables
(`max(_source_ts)`) is compared with the refresh the regulation declares, allowed twice over
so that one late refresh does not count (continuous: one hour). One incident per silent
episode; a change arriving ends the episode.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

from model.regulation import Regulation
from model.names import WAREHOUSE_DB
from schemas.incidents import Detection

ALLOWED_SILENCE_S = {"continuous": 3_600, "hourly": 2 * 3_600, "daily": 2 * 86_400, "monthly": 62 * 86_400}


def last_commit(client, regulation: Regulation) -> float | None:
    """Unix time of the provider's newest source commit in the warehouse; None before any row."""
    parts = " UNION ALL ".join(f"SELECT max(_source_ts) AS ts FROM {WAREHOUSE_DB}.`{regulation.warehouse_table(t)}`"
                               for t in regulation.tables)
    newest = client.query(f"SELECT max(ts) FROM ({parts})").result_rows[0][0]
    if newest is None or newest.year <= 1970:   # max() over no rows gives the epoch
        return None
    return (newest if newest.tzinfo else newest.replace(tzinfo=timezone.utc)).timestamp()


class SilenceWatch:
    def __init__(self) -> None:
        self._silent: set[str] = set()

    def observe(self, regulation: Regulation, last: float | None, now: float | None = None) -> Detection | None:
        """A detection when the provider has just become silent; None otherwise."""
        if last is None:
            return None
        now = time.time() if now is None else now
        allowed = ALLOWED_SILENCE_S[regulation.source.refresh]
        if now - last <= allowed:
            self._silent.discard(regulation.provider)
            return None
        if regulation.provider in self._silent:
            return None
        self._silent.add(regulation.provider)
        since = datetime.fromtimestamp(last, timezone.utc).isoformat(timespec="seconds")
        return Detection(regulation.provider, None, "source_silent", "timeliness", "warning", 1,
                         f"no source change since {since} ({(now - last) / 3600:.1f} h); the regulation "
                         f"declares refresh '{regulation.source.refresh}' (allowed silence {allowed // 3600} h)",
                         "assessor")
