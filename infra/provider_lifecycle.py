"""`qoima provider apply` and `qoima provider remove`: one provider brought into, or taken out of,
the running local stack while the others keep flowing.

Apply, for a new or changed regulation: where the stack itself owns the source (the local
PostgreSQL or MariaDB), the owner's side first (schema grants, the publication), then the source
check, which refuses a source capture would break; the topics; Qoima's processes restarted one at
a time (sink, which creates or evolves the warehouse tables; the processor's workers; the
assessor; the poller), each healthy before the next, so the other providers' changes wait in
Kafka for those seconds and none is lost; the connector created or updated; and an incremental
snapshot of the tables new to a connector that already ran (a new connector snapshots all of its
tables itself; marker mode reads a new table from its start).

Remove: the connector deleted, then what it holds at the source released: PostgreSQL's
replication slot (which keeps WAL until dropped) and the publication; the regulation file moved
to `removed/` beside the others, so neither `qoima up` nor the processes bring it back; the
processes restarted without it. The warehouse tables stay unless `drop_data`.
"""
from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from connectors.connect_client import ConnectClient
from connectors.debezium.shared import table_regex
from infra.local_secrets import secret_file
from infra.qoima_processes import processor_process
from infra.stack import QOIMA_PROCESSES, LocalStack
from model.names import HISTORY_VIEW_SUFFIX, PROCESSOR_GROUP, WAREHOUSE_DB, processor_instance
from model.regulation import Regulation, Table, load_regulation

_SLOT_RELEASE_S = 60.0
_SESSION_EXPIRY_S = 30.0   # the processor's session timeout is 10 s


class LifecycleError(RuntimeError):
    """What stops an apply or a remove, with the fix; nothing after the failed step was done."""


def new_tables(regulation: Regulation, include_list: str | None) -> list[Table]:
    """The regulation's tables a connector with `include_list` (None: no connector yet) does not capture."""
    if include_list is None:
        return []
    captured = set(include_list.split(","))
    return [t for t in regulation.tables if table_regex(t.schema_name, t.table_name) not in captured]


def apply_provider(stack: LocalStack, regulations: list[Regulation], provider: str,
                   source_ready: Callable[[Regulation], bool], *, now: bool = False) -> list[str]:
    """Bring `provider`'s regulation (one of `regulations`, all of which the restarted processes
    load) into the running stack; the names of the tables an incremental snapshot was requested for."""
    regulation = _one(regulations, provider)
    progress = stack.progress
    if stack.owns(regulation):
        if regulation.source.dbms == "postgresql":
            stack.postgres.prepare_source()   # grants on every regulated schema, new ones included
            if not regulation.polled:
                stack.postgres.ensure_publication(regulation)
        else:
            stack.mariadb.prepare(regulation, regulation.source.password.read(stack.s.regulation_env()),
                                  secret_file(stack.s.secrets_dir / "mariadb-owner-password"))
    if not source_ready(regulation):
        raise LifecycleError(f"{provider}: not applied: the source is not ready for capture; run the fixes above "
                             "as its data owner, then apply again")
    client = ConnectClient(stack.s.connect_url)
    name = regulation.connector_name
    before = None if regulation.polled or not client.exists(name) else client.config(name)
    fresh = new_tables(regulation, before["table.include.list"] if before else None)
    stack.kafka.create_topics(regulations)
    restart_processes(stack, any(r.polled for r in regulations))
    if not regulation.polled:
        stack.connect.register([regulation])
    # Its lineage, and a new version of its data passport if the regulation changed it (docs/passport.md).
    from governance.passport.rounds import on_apply

    on_apply(stack.s, [regulation])
    if not fresh:
        return []
    chosen = [t.name for t in fresh]
    window = regulation.source.load_window
    if window is not None and not window.contains(datetime.now(timezone.utc)) and not now:
        progress(f"{provider}: new table(s) {', '.join(chosen)} stream from now on; their existing rows load with "
                 f"`qoima snapshot {provider} {' '.join(chosen)}` in the minimum-load window {window} "
                 "(or apply --now)")
        return []
    from connectors.snapshot import start_load

    signal = start_load(regulation, chosen, stack.s.regulation_env(), stack.s.run_dir / "loads")
    progress(f"{provider}: incremental snapshot of the new table(s) {', '.join(chosen)} requested (signal {signal})")
    return chosen


def restart_processes(stack: LocalStack, polled: bool) -> None:
    """Qoima's processes one at a time, each healthy again before the next stops; the poller
    only while some regulation is polled."""
    for name in QOIMA_PROCESSES:
        if name == "processor":
            for worker in range(stack.s.processor_workers):
                stack.managed(processor_process(worker)).stop()
                _start_worker_anew(stack, worker)
            continue
        stack.managed(name).stop()
        if name != "poller" or polled:
            stack.start_qoima_process(name)


def _start_worker_anew(stack: LocalStack, worker: int) -> None:
    """A processor worker that subscribes to other topics than before must rejoin its group as a
    new member: a static member (group.instance.id) that rejoins within its session gets its
    previous assignment back without a rebalance, and a new raw topic stayed unassigned (seen in
    the e2e test). So it starts once the group no longer lists it (at most its 10 s session)."""
    from confluent_kafka.admin import AdminClient

    from schemas.kafka_clients import admin_config

    admin = AdminClient(admin_config(stack.s.kafka_bootstrap))
    instance = processor_instance(worker)
    deadline = time.monotonic() + _SESSION_EXPIRY_S
    while time.monotonic() < deadline:
        group = admin.describe_consumer_groups([PROCESSOR_GROUP])[PROCESSOR_GROUP].result(timeout=10)
        if all(member.group_instance_id != instance for member in group.members):
            break
        time.sleep(0.5)
    else:
        raise LifecycleError(f"processor worker {worker} is still a member of {PROCESSOR_GROUP} "
                             f"{_SESSION_EXPIRY_S:.0f} s after it stopped; see its log")
    stack.start_qoima_process("processor", worker)


def remove_provider(stack: LocalStack, regulations_dir: Path, provider: str, *, drop_data: bool = False) -> Path:
    """Take `provider` out of the running stack; the regulation file's new place."""
    path, regulation = _file_of(regulations_dir, provider, stack.s.regulation_env())
    progress = stack.progress
    if not regulation.polled:
        client = ConnectClient(stack.s.connect_url)
        if client.exists(regulation.connector_name):
            client.delete(regulation.connector_name)
            progress(f"connector {regulation.connector_name}: deleted")
        if regulation.source.dbms == "postgresql":
            _drop_slot(stack, regulation)
            _drop_publication(stack, regulation)
    removed = regulations_dir / "removed"
    removed.mkdir(exist_ok=True)
    target = removed / path.name
    shutil.move(str(path), target)
    progress(f"{path} moved to {target}: `qoima up` and the processes no longer load it")
    remaining = [load_regulation(p, stack.s.regulation_env()) for p in sorted(regulations_dir.glob("*.yaml"))]
    restart_processes(stack, any(r.polled for r in remaining))
    if drop_data:
        _drop_tables(stack, regulation)
    else:
        progress(f"warehouse tables of {provider} kept (remove --drop-data drops them)")
    return target


def _drop_slot(stack: LocalStack, regulation: Regulation) -> None:
    """As the capture account (REPLICATION may drop a slot): WAL is released once it is gone. The
    deleted connector's task lets go of it within seconds."""
    from connectors.source_reader import catalog_rows, connect_source

    conn = connect_source(regulation, stack.s.regulation_env(), application="qoima-provider-remove", autocommit=True)
    try:
        deadline = time.monotonic() + _SLOT_RELEASE_S
        while True:
            rows = catalog_rows(conn, "SELECT active FROM pg_replication_slots WHERE slot_name = %s",
                                (regulation.slot_name,))
            if not rows:
                stack.progress(f"slot {regulation.slot_name}: none")
                return
            if not rows[0][0]:
                catalog_rows(conn, "SELECT pg_drop_replication_slot(%s)", (regulation.slot_name,))
                stack.progress(f"slot {regulation.slot_name}: dropped, WAL released")
                return
            if time.monotonic() > deadline:
                raise LifecycleError(f"slot {regulation.slot_name} is still in use {_SLOT_RELEASE_S:.0f} s after the "
                                     "connector was deleted; find its user in pg_stat_replication, then "
                                     f"SELECT pg_drop_replication_slot('{regulation.slot_name}')")
            time.sleep(0.5)
    finally:
        conn.close()


def _drop_publication(stack: LocalStack, regulation: Regulation) -> None:
    statement = f"DROP PUBLICATION IF EXISTS {regulation.publication_name}"
    if not stack.owns(regulation):
        stack.progress(f"publication {regulation.publication_name}: its owner drops it: {statement};")
        return
    import psycopg

    with psycopg.connect(stack.pg_admin_conninfo(regulation.source.database), autocommit=True) as conn:
        conn.execute(statement)
    stack.progress(f"publication {regulation.publication_name}: dropped")


def _drop_tables(stack: LocalStack, regulation: Regulation) -> None:
    from sinks.clickhouse_users import ADMIN_USER, client

    admin = client(stack.s, ADMIN_USER)
    for table in regulation.tables:
        warehouse = regulation.warehouse_table(table)
        for name in (f"{warehouse}{HISTORY_VIEW_SUFFIX}", regulation.history_table(table), warehouse,
                     regulation.held_table(table)):
            admin.command(f"DROP TABLE IF EXISTS {WAREHOUSE_DB}.`{name}`")
    stack.progress(f"warehouse tables of {regulation.provider} dropped")


def _one(regulations: list[Regulation], provider: str) -> Regulation:
    for regulation in regulations:
        if regulation.provider == provider:
            return regulation
    raise LifecycleError(f"no regulation declares provider {provider!r}; declared: "
                         f"{', '.join(r.provider for r in regulations)}")


def _file_of(directory: Path, provider: str, environ: dict[str, str]) -> tuple[Path, Regulation]:
    for path in sorted(directory.glob("*.yaml")):
        regulation = load_regulation(path, environ)
        if regulation.provider == provider:
            return path, regulation
    raise LifecycleError(f"no regulation file in {directory} declares provider {provider!r}")
