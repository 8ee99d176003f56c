"""Running `qoima` as a user does: a subprocess against the test stack."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def qoima(stack, *args: str, regulations: Path | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """`python -m qoima ARGS` with the test stack's home (and `regulations` as the regulations
    directory, when given); its exit status and output, for the caller to check."""
    env = {**os.environ, "QOIMA_HOME": str(stack.s.home)}
    if regulations is not None:
        env["QOIMA_REGULATIONS_DIR"] = str(regulations)
    return subprocess.run([sys.executable, "-m", "qoima", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
