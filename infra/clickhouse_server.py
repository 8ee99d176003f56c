"""Serve ClickHouse over HTTP and native TCP from the chdb-core engine (one server per process).

chdb's module-level query runs the full local server when its working directory holds a
config.xml: `SYSTEM START LISTEN` opens the listeners for as long as that same call keeps
running, so the call ends with a keep-alive query that only SIGTERM ends.
Run as: python -m infra.clickhouse_server <conf dir> <data dir>
"""
from __future__ import annotations

import os
import sys


def main() -> None:
    conf_dir, data_dir = sys.argv[1], sys.argv[2]
    # chdb's import opens (and closes) a throw-away session as the built-in passwordless
    # user; it must happen before the chdir, or it would meet our users.xml and fail.
    import chdb._chdb as engine

    os.chdir(conf_dir)

    engine.query(
        "SYSTEM START LISTEN HTTP; SYSTEM START LISTEN TCP; "
        "SELECT count() FROM system.numbers WHERE NOT ignore(sleepEachRow(1)) "
        "SETTINGS max_block_size = 1, max_execution_time = 0",
        "TabSeparated",
        path=data_dir,
    )


if __name__ == "__main__":
    main()
