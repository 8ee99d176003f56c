"""A small Kafka Connect REST client whose errors tell a person what to do.

Covers what Qoima needs of the REST API: create-or-update (PUT /connectors/{name}/config is
idempotent), status, pause, resume, restart (with tasks), delete, and waiting for RUNNING.
"""
from __future__ import annotations

import time
from typing import Any

import requests
from tenacity import RetryCallState

from schemas import retry


class ConnectError(RuntimeError):
    """A Kafka Connect request failed; the message says what happened and what to try."""


class ConnectClient:
    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    def _request(self, method: str, path: str, **kwargs) -> Any:
        try:
            response = self.session.request(method, f"{self.url}{path}", timeout=self.timeout, **kwargs)
        except requests.ConnectionError:
            raise ConnectError(f"Kafka Connect is not reachable at {self.url}; start it with `qoima up` "
                               "or check QOIMA_PORT_SHIFT") from None
        except requests.Timeout:
            raise ConnectError(f"Kafka Connect at {self.url} did not answer {method} {path} within "
                               f"{self.timeout:.0f}s; it may be rebalancing, try again") from None
        if response.status_code == 404:
            raise ConnectError(f"{method} {path}: not found; `qoima connector list` shows what is registered")
        if response.status_code == 409:
            raise ConnectError(f"{method} {path}: Kafka Connect is rebalancing; retry in a few seconds")
        if response.status_code >= 400:
            try:
                detail = response.json().get("message", response.text)
            except ValueError:
                detail = response.text
            hint = ""
            if response.status_code == 400 and "Connector configuration is invalid" in detail:
                hint = " (fix the regulation's source block; `qoima regulation check` validates it)"
            if response.status_code == 500 and "Failed to find any class" in detail:
                hint = " (the Debezium plugin is not on the worker's plugin.path: run `make setup`)"
            raise ConnectError(f"{method} {path} failed with HTTP {response.status_code}: {detail[:800]}{hint}")
        return response.json() if response.content else None

    def list(self) -> list[str]:
        return self._request("GET", "/connectors")

    def exists(self, name: str) -> bool:
        return name in self.list()

    def validate(self, name: str, config: dict[str, str]) -> list[str]:
        """Problems Connect finds in connector `name`'s config, as 'property: message' lines
        (empty when valid). The validation endpoint wants the name inside the config, where
        the PUT of /connectors/<name>/config takes it from the path."""
        plugin = config["connector.class"].rsplit(".", 1)[-1]
        result = self._request("PUT", f"/connector-plugins/{plugin}/config/validate", json={**config, "name": name})
        problems = []
        for item in result.get("configs", []):
            value = item.get("value", {})
            for error in value.get("errors", []):
                problems.append(f"{value.get('name')}: {error}")
        return problems

    def upsert(self, name: str, config: dict[str, str]) -> str:
        """Create the connector or update its config; 'created', 'updated' or 'unchanged'."""
        existed = self.exists(name)
        if existed and self.config(name) == {**config, "name": name}:
            return "unchanged"
        self._request("PUT", f"/connectors/{name}/config", json=config)
        return "updated" if existed else "created"

    def config(self, name: str) -> dict[str, str]:
        return self._request("GET", f"/connectors/{name}/config")

    def offsets(self, name: str) -> list[dict[str, Any]]:
        """The source offsets the connector last committed (KIP-875): [{partition, offset}]."""
        return self._request("GET", f"/connectors/{name}/offsets").get("offsets", [])

    def status(self, name: str) -> dict[str, Any]:
        return self._request("GET", f"/connectors/{name}/status")

    def pause(self, name: str) -> None:
        self._request("PUT", f"/connectors/{name}/pause")

    def stop(self, name: str) -> None:
        """Stop the connector's tasks and keep its config and offsets (KIP-875); `resume` starts
        it again. Unlike a pause, its tasks release their connections (a PostgreSQL slot becomes
        inactive)."""
        self._request("PUT", f"/connectors/{name}/stop")

    def resume(self, name: str) -> None:
        self._request("PUT", f"/connectors/{name}/resume")

    def restart(self, name: str) -> None:
        self._request("POST", f"/connectors/{name}/restart", params={"includeTasks": "true"})

    def delete(self, name: str) -> None:
        self._request("DELETE", f"/connectors/{name}")

    def state(self, name: str) -> str:
        """RUNNING only when the connector and every task run; else the worst state seen."""
        status = self.status(name)
        states = [status["connector"]["state"]] + [t["state"] for t in status.get("tasks", [])]
        if not status.get("tasks"):
            states.append("UNASSIGNED")
        for bad in ("FAILED", "PAUSED", "UNASSIGNED", "RESTARTING"):
            if bad in states:
                return bad
        return "RUNNING"

    def _state_or_unknown(self, name: str) -> str:
        try:
            return self.state(name)
        except ConnectError:  # not registered yet, or the worker is rebalancing: ask again
            return "UNKNOWN"

    def wait_running(self, name: str, timeout: float = 60.0, failed_grace: float = 15.0) -> None:
        """Wait for RUNNING. FAILED ends the wait once it has lasted `failed_grace` seconds: a task
        that failed under the previous config keeps reporting FAILED for a few seconds after a
        config update has already restarted it (seen after the ports moved)."""
        started = time.monotonic()
        state = retry.poll(retry.CONNECT_POLL, within=timeout, until=lambda s: s == "RUNNING",
                           give_up=_FailedFor(failed_grace))(self._state_or_unknown, name)
        if state == "RUNNING":
            return
        waited = time.monotonic() - started
        trace = ""
        try:
            status = self.status(name)
            traces = [t.get("trace", "") for t in status.get("tasks", []) if t.get("trace")]
            trace = (status["connector"].get("trace") or (traces[0] if traces else "")).strip().splitlines()
            trace = "\n".join(trace[:8])
        except ConnectError:
            pass
        raise ConnectError(f"connector {name} is {state} after {waited:.0f}s; "
                           f"`qoima connector status` shows details.\n{trace}")


class _FailedFor:
    """Ends a wait for RUNNING once the connector has reported FAILED for `grace` seconds in a row."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.since: float | None = None

    def __call__(self, state: RetryCallState) -> bool:
        if state.outcome is None or state.outcome.result() != "FAILED":
            self.since = None
            return False
        now = time.monotonic()
        if self.since is None:
            self.since = now
            return False
        return now - self.since >= self.grace
