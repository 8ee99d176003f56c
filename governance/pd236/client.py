"""One PD236 request: an access event as the message docs/pd236.md specifies, sent with a token.

The message carries what the access protocol records (provider, information system, table,
categories, counts, legal basis, purpose, interval, key id) and never a value. `Idempotency-Key`
and `request_id` are the event's deterministic id: the service keeps the first and answers a
repeat as a duplicate, which is how at-least-once delivery stays exactly-once at the service.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import requests

from governance.pd236.token import MODE, Token
from sinks.ddl import ACCESS_COLUMNS

TIMEOUT_S = 5.0
# What an access event says: the events table's columns but its id, which the message carries apart.
FIELDS = tuple(column for column in ACCESS_COLUMNS if column != "event_id")
_WORD = re.compile(r"^[a-z_]{1,32}$")


@dataclass(frozen=True)
class Reply:
    status: int           # the HTTP status; 0 when nothing answered
    accepted: bool
    receipt: str = ""
    duplicate: bool = False
    error: str = ""       # what went wrong, in Qoima's words: never a response body
    reason: str = ""      # the metric label: http_401, timeout, connection, ...


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return value


def message(event_id: str, event: dict[str, Any]) -> str:
    """The request body for one access event (a row of qoima_meta.pd236_access_events)."""
    access = {name: _iso(event[name]) for name in FIELDS}
    access["categories"] = list(access["categories"])
    access["rows"], access["subjects"] = int(access["rows"]), int(access["subjects"])
    access["subjects_exact"] = bool(access["subjects_exact"])
    return json.dumps({"request_id": event_id, "mode": MODE, "access": access}, ensure_ascii=False, sort_keys=True)


def send(endpoint: str, body: str, token: Token, request_id: str, timeout: float = TIMEOUT_S) -> Reply:
    headers = {"Authorization": f"Bearer {token.value}", "Idempotency-Key": request_id,
               "Content-Type": "application/json; charset=utf-8", "User-Agent": "qoima-pd236"}
    try:
        response = requests.post(endpoint, data=body.encode("utf-8"), headers=headers, timeout=timeout,
                                 allow_redirects=False)
    except requests.Timeout:
        return Reply(0, False, error="no answer within the timeout", reason="timeout")
    except requests.ConnectionError:
        return Reply(0, False, error="the service does not answer (connection refused or lost)", reason="connection")
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    answer = answer if isinstance(answer, dict) else {}
    if 200 <= response.status_code < 300 and answer.get("status") == "accepted":
        return Reply(response.status_code, True, str(answer.get("receipt", ""))[:100], bool(answer.get("duplicate")))
    # The service's own error word (e.g. `expired`) is safe to keep; free text from it is not kept.
    word = answer.get("reason") if isinstance(answer.get("reason"), str) and _WORD.match(answer["reason"]) else ""
    error = f"HTTP {response.status_code}" + (f" ({word})" if word else "")
    if response.status_code == 401:
        error = f"token refused by the service" + (f": {word}" if word else "") + f" (HTTP 401)"
    return Reply(response.status_code, False, error=error, reason=f"http_{response.status_code}")
