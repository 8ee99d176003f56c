"""`qoima pd236 standin`: a local stand-in for the state service for control of access to
personal data (PD236), started by the local and test stacks.

A real HTTP server that does what docs/pd236.md says the service does with Qoima's requests:
verifies the security token (RS256 signature with the operator's registered public key, expiry,
audience), checks the message, keeps the first request of each id and answers a repeat as a
duplicate, and records every request it receives, refused ones included, one JSON line each in
`QOIMA_HOME/data/pd236-standin/received.jsonl` (kept across restarts, as a service's journal
would be). `GET /api/v1/received` returns that journal: the tests and the testing act read it.

Requests carry counts and categories, never a value; the journal holds what they carry.
"""
from __future__ import annotations

import json
import logging
import threading
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from governance.pd236.client import FIELDS
from governance.pd236.token import MODE, TokenRefused, verify
from model.settings import Settings

log = logging.getLogger("qoima.pd236.standin")

EVENTS_PATH = "/api/v1/access-events"
RECEIVED_PATH = "/api/v1/received"


class Journal:
    """What the stand-in received, in memory and in its JSON-lines file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.records: list[dict] = []
        self.receipts: dict[str, str] = {}
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                self.records.append(record)
                if record["outcome"] == "accepted":
                    self.receipts[record["request_id"]] = record["receipt"]

    def add(self, record: dict) -> None:
        with self.path.open("a", encoding="utf-8") as file:
            file.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
        self.records.append(record)


def judge(journal: Journal, authorization: str, idempotency_key: str, body: bytes, public_pem: bytes,
          audience: str) -> tuple[int, dict]:
    """(HTTP status, JSON answer) for one request, recorded in the journal."""
    received = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    record: dict = {"received": received, "request_id": idempotency_key or None}
    scheme, _, token = authorization.partition(" ")
    try:
        if scheme != "Bearer" or not token:
            raise TokenRefused("missing", "no Bearer security token in the Authorization header")
        claims = verify(token, public_pem, audience)
    except TokenRefused as refused:
        record.update(outcome="refused", reason=refused.reason)
        journal.add(record)
        return 401, {"status": "refused", "error": "invalid_token", "reason": refused.reason, "detail": str(refused)}
    record.update(jti=claims["jti"], issuer=claims["iss"], subject=claims.get("sub"))
    problem = _problem(body, idempotency_key, claims)
    if problem:
        record.update(outcome="rejected", reason=problem[0])
        journal.add(record)
        return 400, {"status": "rejected", "error": "invalid_request", "reason": problem[0], "detail": problem[1]}
    message = json.loads(body)
    with journal.lock:
        receipt = journal.receipts.get(message["request_id"])
        duplicate = receipt is not None
        if not duplicate:
            receipt = journal.receipts[message["request_id"]] = f"R-{uuid.uuid4().hex[:16]}"
        record.update(outcome="duplicate" if duplicate else "accepted", receipt=receipt, access=message["access"])
        journal.add(record)
    return 200, {"status": "accepted", "receipt": receipt, "duplicate": duplicate}


def _problem(body: bytes, idempotency_key: str, claims: dict) -> tuple[str, str] | None:
    try:
        message = json.loads(body)
    except ValueError:
        return "malformed", "the body is not JSON"
    if not isinstance(message, dict) or not isinstance(message.get("access"), dict):
        return "malformed", "the body must be an object with 'request_id', 'mode' and 'access'"
    if message.get("mode") != MODE or claims.get("mode") != MODE:
        return "mode", f"this integration is registered for mode {MODE!r} (PD236 §7.4)"
    if not message.get("request_id") or message["request_id"] != idempotency_key:
        return "idempotency_key", "the Idempotency-Key header must equal request_id"
    missing = [name for name in FIELDS if name not in message["access"]]
    if missing:
        return "fields", f"access lacks {', '.join(missing)}"
    return None


def handler(journal: Journal, public_pem: bytes, audience: str) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, answer: object) -> None:
            body = json.dumps(answer, ensure_ascii=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Bearer error="invalid_token"')
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path != EVENTS_PATH:
                return self._answer(404, {"status": "rejected", "error": "not_found"})
            status, answer = judge(journal, self.headers.get("Authorization", ""),
                                   self.headers.get("Idempotency-Key", ""), body, public_pem, audience)
            log.info("%s %s: %s%s", answer["status"], self.headers.get("Idempotency-Key", "-"),
                     answer.get("receipt", ""), f" ({answer['reason']})" if "reason" in answer else "")
            self._answer(status, answer)

        def do_GET(self) -> None:  # noqa: N802
            if self.path == RECEIVED_PATH:
                with journal.lock:
                    return self._answer(200, list(journal.records))
            if self.path == "/health":
                return self._answer(200, {"status": "ok"})
            self._answer(404, {"status": "rejected", "error": "not_found"})

        def log_message(self, *_) -> None:  # the line above says what matters
            pass

    return _Handler


def serve(settings: Settings) -> None:
    key = settings.pd236_verifying_key
    if not key.is_file():
        raise SystemExit(f"the operator's public key {key} does not exist; `qoima up` makes the local pair")
    journal = Journal(settings.data_dir / "pd236-standin" / "received.jsonl")
    try:
        server = ThreadingHTTPServer((settings.host, settings.ports.pd236_standin),
                                     handler(journal, key.read_bytes(), settings.pd236_audience))
    except OSError as exc:
        raise SystemExit(f"cannot listen on {settings.host}:{settings.ports.pd236_standin}: {exc.strerror}; "
                         "set QOIMA_PORT_SHIFT") from None
    log.info("PD236 stand-in on %s%s (audience %r, %d request(s) in its journal)", settings.pd236_standin_url,
             EVENTS_PATH, settings.pd236_audience, len(journal.records))
    server.serve_forever()
