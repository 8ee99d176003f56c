"""Keep one Qoima process running: restart it when it exits with an error, stop with it.

`qoima up` starts the processor, the sink, the assessor and the poller under this
supervisor, so a crash costs seconds instead of needing an operator. In production
systemd's `Restart=on-failure` does the same job; this is the local stack's equivalent.

    python -m infra.supervise <name> -- <argv...>

A clean exit (status 0) or SIGTERM/SIGINT to the supervisor ends supervision. A first run that
fails within 10 s is a configuration problem, not a crash: the supervisor exits with its status
so `qoima up` fails fast with the log tail. Later failures restart with a back-off from 1 s to
30 s (schemas/retry.py, SUPERVISED_RESTART); a child that ran for a minute resets the back-off.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time

from schemas import retry

HEALTHY_AFTER_S, FAIL_FAST_S = 60.0, 10.0


def _say(name: str, message: str) -> None:
    print(f"==== {time.strftime('%Y-%m-%d %H:%M:%S')} supervisor of {name}: {message}", flush=True)


def supervise(name: str, argv: list[str]) -> int:
    stopping = False
    child: subprocess.Popen | None = None

    def forward(signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    restarts = 0
    failing = 0  # short runs in a row since the last one that lasted (each doubles the pause)
    while True:
        started = time.monotonic()
        child = subprocess.Popen(argv)
        status = child.wait()
        if stopping:
            return 0
        if status == 0:
            _say(name, "exited cleanly; not restarting")
            return 0
        ran = time.monotonic() - started
        if restarts == 0 and ran < FAIL_FAST_S:
            _say(name, f"failed at start-up with status {status}; not restarting (see the lines above)")
            return status if status > 0 else 1
        failing = 0 if ran > HEALTHY_AFTER_S else failing + 1
        backoff = retry.delay_after(retry.SUPERVISED_RESTART, failing + 1)
        restarts += 1
        _say(name, f"exited with status {status} after {ran:.0f} s; restart {restarts} in {backoff:.0f} s")
        deadline = time.monotonic() + backoff
        while time.monotonic() < deadline and not stopping:
            time.sleep(0.1)
        if stopping:
            return 0


def main(args: list[str]) -> int:
    if len(args) < 3 or args[1] != "--":
        print("usage: python -m infra.supervise <name> -- <command> [args...]", file=sys.stderr)
        return 2
    return supervise(args[0], args[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
