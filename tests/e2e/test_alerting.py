"""Alerting on the real stack (issue 14 item 4): Prometheus sends what it fires to the local
Alertmanager, which routes it to the demo webhook (infra/local/alertmanager.yml)."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from tests.e2e.warehouse import poll_until


def test_prometheus_knows_the_alertmanager(stack):
    url = f"http://{stack.s.host}:{stack.s.ports.alertmanager}"

    def active() -> bool:
        answer = requests.get(f"{stack.s.prometheus_url}/api/v1/alertmanagers", timeout=5).json()
        return any(am["url"].startswith(url) for am in answer["data"]["activeAlertmanagers"])
    poll_until(active, 60, "Prometheus to list the local Alertmanager as active")


def test_an_alert_is_routed_to_the_demo_webhook(stack):
    received: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append({"path": self.path, "payload": json.loads(body)})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_) -> None:
            pass

    # Where `qoima demo webhook` listens when the demo runs; the test stack runs no demo load.
    server = ThreadingHTTPServer((stack.s.host, stack.s.ports.demo_webhook), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        alert = {"labels": {"alertname": "QoimaRoutingTest", "table": "demo.population.persons"},
                 "annotations": {"summary": "routing test"}}
        answer = requests.post(f"http://{stack.s.host}:{stack.s.ports.alertmanager}/api/v2/alerts", json=[alert],
                               timeout=5)
        assert answer.ok, answer.text

        def delivered() -> bool:
            return any(r["path"] == "/alertmanager" and any(a["labels"].get("alertname") == "QoimaRoutingTest"
                                                             for a in r["payload"].get("alerts", []))
                       for r in received)
        poll_until(delivered, 60, "Alertmanager to deliver the alert to the demo webhook")
    finally:
        server.shutdown()
        server.server_close()
