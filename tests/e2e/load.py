"""The demo load in the background of an e2e test: a kill or a restart happens while it runs."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from infra.demo.source import LoadDriver
from infra.stack import SOURCE_DB


@contextmanager
def background_load(stack, rate: float, seconds: float, seed: int) -> Iterator[dict]:
    """`rate` changes/s at the demo source for `seconds`, in a thread; the dict yielded holds
    the driver's summary under "result" once the block has waited for the load to end."""
    stop = threading.Event()
    driver = LoadDriver(stack.pg_admin_conninfo(SOURCE_DB), rate=rate, seed=seed)
    summary: dict = {}
    load = threading.Thread(target=lambda: summary.update(result=driver.run(duration=seconds, stop_event=stop)))
    load.start()
    try:
        yield summary
    finally:
        load.join(timeout=seconds + 60)
        stop.set()
