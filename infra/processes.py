"""Detached processes with pid files: start, find, stop. No daemon manager is assumed."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

# How a component reports its start-up to whoever runs the stack (print, or the tests' prefixed print).
Progress = Callable[[str], None]


class StackError(RuntimeError):
    """A component could not start or stop; the message carries its log tail."""


def log_tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"(no log at {path})"
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:])


@dataclass(frozen=True)
class Managed:
    name: str
    run_dir: Path
    log_file: Path

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    def pid(self) -> int | None:
        """The pid of the running process, or None (a stale pid file is removed)."""
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, IndexError):
            state = None
        if state is None or state == "Z":
            self.pid_file.unlink(missing_ok=True)
            return None
        return pid

    def start(self, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
              user: str | None = None) -> int:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        if user:
            argv = ["runuser", "-u", user, "--", *argv]
        with open(self.log_file, "ab") as log:
            log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {self.name}\n".encode())
            log.flush()
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       cwd=cwd, env=env, start_new_session=True)
        self.pid_file.write_text(f"{process.pid}\n")
        return process.pid

    def adopt(self, pid: int) -> None:
        """Record a pid that another program started (PostgreSQL's postmaster via pg_ctl)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.pid_file.write_text(f"{pid}\n")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> bool:
        """Signal the process group and wait; SIGKILL after the timeout. True if it was running."""
        pid = self.pid()
        if pid is None:
            return False
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.2)
        if self.pid() is not None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            time.sleep(0.5)
        self.pid_file.unlink(missing_ok=True)
        return True


def wait_until(check, timeout: float, what: str, managed: Managed | None, interval: float = 0.5) -> None:
    """Poll `check` until it returns truthy; on time-out or death, raise with the log tail."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # a health check failing is the normal "not yet"
            last_error = f"{type(exc).__name__}: {exc}"[:300]
        if managed is not None and managed.pid() is None:
            raise StackError(f"{what} exited during start-up. Last lines of {managed.log_file}:\n"
                             f"{log_tail(managed.log_file)}")
        time.sleep(interval)
    tail = f"\nLast lines of {managed.log_file}:\n{log_tail(managed.log_file)}" if managed else ""
    raise StackError(f"{what} was not healthy after {timeout:.0f}s ({last_error or 'no answer'}).{tail}")
