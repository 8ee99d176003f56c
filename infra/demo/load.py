"""`qoima demo load`: the demo source's change load, with progress and Prometheus metrics."""
from __future__ import annotations

from infra.demo.source import LoadDriver, LoadSummary
from infra.stack import SOURCE_DB, LocalStack
from monitoring import metrics
from model.settings import Settings


def load(settings: Settings, rate: float, duration: float | None, serve_metrics: bool = False) -> LoadSummary:
    """`rate` changes a second (positive) until `duration` seconds pass or Ctrl-C.

    `serve_metrics` is for the stack's own demo load; extra ad-hoc loads run beside it
    without a metrics port of their own."""
    if rate <= 0:
        raise ValueError("rate must be a positive number of changes per second")
    if serve_metrics:
        metrics.serve(settings.ports.demo_metrics, settings.host)
    conninfo = LocalStack(settings).pg_admin_conninfo(SOURCE_DB)
    seen = {"inserts": 0, "updates": 0, "deletes": 0}

    def progress(summary: LoadSummary) -> None:
        for kind in seen:
            total = getattr(summary, kind)
            metrics.DEMO_CHANGES.labels(kind).inc(total - seen[kind])
            seen[kind] = total
        print(f"demo load: {summary}", flush=True)

    summary = LoadDriver(conninfo, rate).run(duration=duration, progress=progress)
    progress(summary)
    return summary
