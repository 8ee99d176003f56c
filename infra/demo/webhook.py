"""`qoima demo webhook`: the demo table users' notification receiver (DM385 §49).

Logs each incident notification it receives (payloads carry no values by design), and each alert
Alertmanager routes to `/alertmanager`, and answers 204, so the local stack shows notifications
and alerts end to end.
"""
from __future__ import annotations

import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger("qoima.demo.webhook")


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            payload = json.loads(body)
            if self.path == "/alertmanager":  # what Alertmanager routes here (infra/local/alertmanager.yml)
                for alert in payload.get("alerts", []):
                    log.info("alert %s: %s (%s)", alert.get("labels", {}).get("alertname", "?"),
                             alert.get("status", "?"), alert.get("annotations", {}).get("summary", ""))
            else:
                log.info("notification %s: %s %s (%s)", self.headers.get("Idempotency-Key", "-"),
                         payload.get("event", "?"), payload.get("incident_key", "?"), payload.get("status", "?"))
        except ValueError:
            log.warning("a notification that is not JSON (%d bytes)", len(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_) -> None:  # the line above says what matters
        pass


def serve(host: str, port: int) -> None:
    try:
        server = ThreadingHTTPServer((host, port), _Receiver)
    except OSError as exc:
        raise SystemExit(f"cannot listen on {host}:{port}: {exc.strerror}; set QOIMA_PORT_SHIFT") from None
    log.info("demo webhook receiver on http://%s:%d/hook", host, port)
    server.serve_forever()
