"""The `qoima` command line. Thin: it parses arguments and calls the package that owns the work.

Commands, arguments and their help come from the functions' signatures (typer). A problem the
operator can act on ends a command with its message on stderr and exit status 1; a usage
error with one line and status 2. The work is imported inside each command, so
`qoima --help` and every command load only what they need.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from model.settings import Settings, SettingsError

if TYPE_CHECKING:
    from model.regulation import Regulation

ConnectorAction = Literal["register", "status", "pause", "resume", "restart", "delete", "list"]
IncidentStatus = Literal["open", "acknowledged", "resolved", "closed"]
# Incident verb -> its help; the status each records is governance.incident_journal.ACTIONS.
MOVES = {"ack": "acknowledge: someone is on it", "resolve": "the problem is fixed",
         "close": "the one who raised it confirms the fix", "reopen": "a resolved incident is not fixed after all"}

JsonFlag = Annotated[bool, typer.Option("--json", help="print JSON instead of text")]
IncidentKey = Annotated[str, typer.Argument(help="incident key: provider/table/rule")]


def _group(help_text: str, **settings) -> typer.Typer:
    # Never a pretty traceback: its locals could show secrets; a bug keeps Python's plain one.
    return typer.Typer(help=help_text, add_completion=False, pretty_exceptions_enable=False, **settings)


app = _group("Qoima: change data capture from regulated sources, depersonalized, into ClickHouse.",
             name="qoima", no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})
regulation_app = _group("interaction regulation files", no_args_is_help=True)
dq_app = _group("data-quality assessment (DM385 §53-55): the seven indicators per table", no_args_is_help=True)
quarantine_app = _group("the quarantine topic", no_args_is_help=True)
sink_app = _group("run the ClickHouse sink in the foreground (or act on it)", invoke_without_command=True)
demo_app = _group("the demo source", no_args_is_help=True)
provider_app = _group("a provider: what capture needs from its source; bringing it into the stack and out",
                      no_args_is_help=True)
pd236_app = _group("PD236: the personal-data access protocol for the state access-control service "
                   "(docs/pd236.md)", no_args_is_help=True)
incidents_app = _group("the incident journal (DM385 §49): list, show, and move incidents "
                       "through open -> acknowledged -> resolved -> closed", no_args_is_help=True)
# The help lists the commands in panels along the data flow.
STACK, CAPTURE, PROCESSING, GOVERNANCE = "The local stack", "Capture", "Processing and loading", "Governance"
app.add_typer(demo_app, name="demo", rich_help_panel=STACK)
app.add_typer(regulation_app, name="regulation", rich_help_panel=CAPTURE)
app.add_typer(provider_app, name="provider", rich_help_panel=CAPTURE)
app.add_typer(quarantine_app, name="quarantine", rich_help_panel=PROCESSING)
app.add_typer(sink_app, name="sink", rich_help_panel=PROCESSING)
app.add_typer(dq_app, name="dq", rich_help_panel=GOVERNANCE)
app.add_typer(incidents_app, name="incidents", rich_help_panel=GOVERNANCE)
app.add_typer(pd236_app, name="pd236", rich_help_panel=GOVERNANCE)


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise SystemExit(f"qoima: {exc}") from None


def _regulations(settings: Settings) -> list[Regulation]:
    from model.regulation import RegulationError, load_all

    try:
        return load_all(settings.regulations_dir, settings.regulation_env())
    except RegulationError as exc:
        raise SystemExit(str(exc)) from None


def _regulation_of(regulations: dict[str, Regulation], provider: str) -> Regulation:
    if provider not in regulations:
        raise SystemExit(f"no regulation for provider {provider!r}; known: {', '.join(regulations)}")
    return regulations[provider]


def _table(*columns: str, right: tuple[str, ...] = ()) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left")
    return table


# ------------------------------------------------------------------------------- the local stack

@app.command(rich_help_panel=STACK, help="start the local stack, register the demo source, start the demo load")
def up(demo_rate: Annotated[float, typer.Option(help="demo changes per second")] = 50.0,
       no_demo: Annotated[bool, typer.Option("--no-demo", help="do not start the demo load")] = False) -> None:
    from infra.processes import StackError
    from infra.stack import LocalStack

    settings = _settings()
    try:
        LocalStack(settings).up(demo_rate=None if no_demo else demo_rate)
    except StackError as exc:
        raise SystemExit(f"qoima up failed: {exc}") from None
    from sinks.clickhouse_users import ANALYST_USER, WRITER_USER, password_file

    print(f"""
Qoima is running.
  ClickHouse      {settings.clickhouse_url}  (native TCP {settings.host}:{settings.ports.clickhouse_tcp})
                  analyst (read-only, database udw): password in {password_file(settings, ANALYST_USER)}
                  {WRITER_USER} (sinks): password in {password_file(settings, WRITER_USER)}
                  try: curl -s -u {ANALYST_USER}:$(cat {password_file(settings, ANALYST_USER)}) \\
                         '{settings.clickhouse_url}/?query=SELECT+count()+FROM+udw.demo__social__payments+FINAL'
  Prometheus      {settings.prometheus_url}  (alerts: {settings.prometheus_url}/alerts)
  Kafka Connect   {settings.connect_url}/connectors/qoima-demo/status
  Status          qoima status
  Logs            {settings.log_dir}
  Stop            qoima down   (add --wipe to delete the data too)""")


@app.command(rich_help_panel=STACK, help="stop every process the stack started (by pid), keeping data")
def down(wipe: Annotated[bool, typer.Option("--wipe", help="also delete the stack's data")] = False) -> None:
    from infra.stack import LocalStack

    LocalStack(_settings()).down(wipe=wipe)


@app.command(rich_help_panel=STACK, help="connector state, rows loaded and freshness per table")
def status(as_json: JsonFlag = False) -> None:
    from governance.status import collect, render

    settings = _settings()
    report = collect(settings, _regulations(settings))
    print(json.dumps(report, indent=2) if as_json else render(report))


# ------------------------------------------------------------------------------------- capture

@app.command(rich_help_panel=CAPTURE, help="manage the Debezium connectors through Kafka Connect")
def connector(action: Annotated[ConnectorAction, typer.Argument(help="what to do")],
              provider: Annotated[str | None, typer.Argument(
                  help="provider id from its regulation (default: all)")] = None) -> None:
    from connectors.connect_client import ConnectClient, ConnectError
    from connectors.debezium import connector_config

    settings = _settings()
    client = ConnectClient(settings.connect_url)
    regulations = {r.provider: r for r in _regulations(settings)}
    try:
        if action == "list":
            names = client.list()
            if not names:
                print("(no connectors)")
                return
            table = _table("connector")
            for name in names:
                table.add_row(name)
            Console().print(table)
            return
        chosen = [_regulation_of(regulations, provider)] if provider else list(regulations.values())
        for regulation in chosen:
            name = regulation.connector_name
            if regulation.polled:  # no Debezium connector: `qoima poller` reads it
                print(f"{regulation.provider}: capture 'marker', no connector (polled by `qoima poller`)")
                continue
            if action == "register":
                # Never capture a source capture would break (issue 14): its check runs first.
                if not _source_findings(settings, regulation, quiet_ok=True):
                    raise SystemExit(f"{name}: not registered: the source is not ready for capture "
                                     f"(qoima provider check {regulation.provider})")
                config = connector_config(regulation, settings.kafka_bootstrap)
                problems = client.validate(name, config)
                if problems:
                    raise SystemExit(f"{name}: Kafka Connect rejects the config:\n  " + "\n  ".join(problems))
                print(f"{name}: {client.upsert(name, config)}")
            elif action == "status":
                print(json.dumps(client.status(name), indent=2))
            else:
                getattr(client, action)(name)
                print(f"{name}: {action} requested")
    except ConnectError as exc:
        raise SystemExit(str(exc)) from None


def _source_findings(settings: Settings, regulation: Regulation, *, quiet_ok: bool = False) -> bool:
    """Print the source check's findings (connectors/source_check.py); whether none is an error."""
    from connectors.source_check import ERROR, OK, check_source
    from model.personal_data import table_access

    findings = check_source(regulation, settings.regulation_env())
    marks = {OK: "ok  ", "warning": "WARN", ERROR: "FAIL"}
    for finding in findings:
        if quiet_ok and finding.status == OK:
            continue
        print(f"{marks[finding.status]} {finding.subject}: {finding.what}")
        if finding.fix and finding.status != OK:
            print(f"     fix: {finding.fix}")
    if regulation.personal_data is None and table_access([regulation]):
        # Capture goes on (an access is recorded either way), but PD236 reports it without a basis.
        print(f"WARN {regulation.provider}: its tables hold personal data, but the regulation declares no legal "
              "basis for reading them; PD236 access events go out with an empty one\n"
              "     fix: add `personal_data: {legal_basis: ..., purpose: ...}` to the regulation (docs/pd236.md)")
    return not any(f.status == ERROR for f in findings)


@provider_app.command("check", help="verify, as the capture account, everything capture needs from the "
                                    "provider's source; each failure with the SQL or setting that fixes it")
def provider_check(provider: Annotated[str, typer.Argument(help="provider id from its regulation")]) -> None:
    settings = _settings()
    regulation = _regulation_of({r.provider: r for r in _regulations(settings)}, provider)
    if not _source_findings(settings, regulation):
        raise SystemExit(f"{provider}: the source is not ready for capture; run the fixes above as its data owner")
    print(f"{provider}: the source is ready for capture")


@provider_app.command("sql", help="print the script the provider's data owner runs once so that capture can "
                                  "start (idempotent, no secret in it)")
def provider_sql(provider: Annotated[str, typer.Argument(help="provider id from its regulation")]) -> None:
    from connectors.source_script import owner_script

    settings = _settings()
    print(owner_script(_regulation_of({r.provider: r for r in _regulations(settings)}, provider)), end="")


@provider_app.command("apply", help="bring a new or changed regulation into the running stack (topics, warehouse "
                                    "tables, processes one at a time, the connector, a snapshot of new tables) "
                                    "while the other providers keep flowing")
def provider_apply(provider: Annotated[str, typer.Argument(help="provider id from its regulation")],
                   now: Annotated[bool, typer.Option("--now", help="snapshot new tables even outside the "
                                                                   "provider's minimum-load window")] = False) -> None:
    from infra.processes import StackError
    from infra.provider_lifecycle import LifecycleError, apply_provider
    from infra.stack import LocalStack

    settings = _settings()
    regulations = _regulations(settings)
    stack = LocalStack(settings)
    try:
        snapshotted = apply_provider(stack, regulations, provider,
                                     lambda regulation: _source_findings(settings, regulation, quiet_ok=True), now=now)
    except (LifecycleError, StackError) as exc:
        raise SystemExit(str(exc)) from None
    print(f"{provider}: applied" + (f"; loading {', '.join(snapshotted)}: qoima status shows it" if snapshotted else ""))


@provider_app.command("remove", help="stop capturing a provider: delete its connector, drop its replication slot "
                                     "(releasing WAL) and publication, move its regulation to removed/")
def provider_remove(provider: Annotated[str, typer.Argument(help="provider id from its regulation")],
                    drop_data: Annotated[bool, typer.Option("--drop-data", help="also drop its warehouse "
                                                                                "tables")] = False,
                    yes: Annotated[bool, typer.Option("--yes", help="do it (without: say what it would do)")] = False
                    ) -> None:
    from infra.processes import StackError
    from infra.provider_lifecycle import LifecycleError, remove_provider
    from infra.stack import LocalStack

    settings = _settings()
    regulation = _regulation_of({r.provider: r for r in _regulations(settings)}, provider)
    if not yes:
        what = ("its poller stops reading the source" if regulation.polled else
                f"connector {regulation.connector_name} is deleted"
                + (f", slot {regulation.slot_name} and publication {regulation.publication_name} dropped"
                   if regulation.source.dbms == "postgresql" else ""))
        raise SystemExit(f"{provider}: {what}; its regulation moves to {settings.regulations_dir / 'removed'}/; "
                         f"its warehouse tables {'are dropped' if drop_data else 'stay'}. Add --yes to do it.")
    try:
        remove_provider(LocalStack(settings), settings.regulations_dir, provider, drop_data=drop_data)
    except (LifecycleError, StackError) as exc:
        raise SystemExit(str(exc)) from None
    print(f"{provider}: removed")


@regulation_app.command("draft", help="write a starting regulation from a live source's catalog: every table "
                                     "of the chosen schemas, actions left to decide, likely identifiers flagged")
def regulation_draft(
        provider: Annotated[str, typer.Argument(help="the new provider's id")],
        schema: Annotated[list[str], typer.Option("--schema", help="a schema (PostgreSQL) or database (MariaDB) "
                                                                   "to read; repeat for more")],
        host: Annotated[str, typer.Option(help="the source's host")],
        port: Annotated[int, typer.Option(help="the source's port")],
        database: Annotated[str, typer.Option(help="the database to connect to")],
        user: Annotated[str, typer.Option(help="the capture account (it reads the catalog and samples values)")],
        password_file: Annotated[Path, typer.Option("--password-file", help="a file holding its password "
                                                                             "(the draft refers to it, never copies it)")],
        dbms: Annotated[str, typer.Option(help="postgresql or mariadb")] = "postgresql",
        output: Annotated[Path | None, typer.Option("--output", "-o", help="write here instead of stdout")] = None,
) -> None:
    from connectors import regulation_draft as draft

    if dbms not in ("postgresql", "mariadb"):
        raise SystemExit(f"--dbms must be postgresql or mariadb, not {dbms!r}")
    try:
        password = password_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SystemExit(f"cannot read --password-file {password_file}: {exc.strerror}") from None
    try:
        if dbms == "mariadb":
            import pymysql

            conn = pymysql.connect(host=host, port=port, user=user, password=password, database=database,
                                   connect_timeout=10, charset="utf8mb4")
        else:
            import psycopg

            conn = psycopg.connect(host=host, port=port, dbname=database, user=user, password=password,
                                   connect_timeout=10, application_name="qoima-draft", autocommit=True)
    except Exception as exc:  # noqa: BLE001 - any driver error means "cannot connect"; its first line says why
        raise SystemExit(f"cannot connect to {dbms} {host}:{port}/{database} as {user}: "
                         f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") from None
    try:
        tables = (draft.read_mariadb if dbms == "mariadb" else draft.read_postgresql)(conn, schema)
    finally:
        conn.close()
    if not tables:
        raise SystemExit(f"no tables in {', '.join(schema)} visible to {user}: check the names and its grants")
    text = draft.render(provider, dbms, {"host": host, "port": port, "database": database, "user": user,
                                         "password_file": str(password_file)}, tables)
    if output is None:
        print(text, end="")
    else:
        output.write_text(text, encoding="utf-8")
        print(f"{output}: {len(tables)} tables, every action left to decide "
              f"({sum(len(t.columns) for t in tables)} columns)", file=sys.stderr)


@regulation_app.command("check", help="validate regulation files")
def regulation_check(files: Annotated[list[Path] | None, typer.Argument(
        help="regulation files (default: every *.yaml in the regulations directory)")] = None) -> None:
    from model.regulation import RegulationError, load_regulation

    settings = _settings()
    failed = False
    for path in files or sorted(settings.regulations_dir.glob("*.yaml")):
        try:
            regulation = load_regulation(path, settings.regulation_env())
            print(f"{path}: ok (provider {regulation.provider}, {len(regulation.tables)} tables)")
        except RegulationError as exc:
            print(exc, file=sys.stderr)
            failed = True
    if failed:
        raise SystemExit(1)


@app.command(rich_help_panel=CAPTURE, help="re-snapshot tables through Debezium's incremental snapshot, "
                                            "in the provider's minimum-load window")
def snapshot(provider: Annotated[str, typer.Argument(help="provider id from its regulation")],
             tables: Annotated[list[str] | None, typer.Argument(
                 help="schema.table (default: every table of the provider)")] = None,
             now: Annotated[bool, typer.Option("--now", help="start at once, outside the provider's "
                                                            "minimum-load window")] = False,
             pause: Annotated[bool, typer.Option("--pause", help="pause the provider's running snapshot; "
                                                                "streaming goes on")] = False,
             resume: Annotated[bool, typer.Option("--resume", help="resume a paused snapshot from where it "
                                                                  "stopped")] = False) -> None:
    from datetime import datetime, timezone

    from connectors.snapshot import pause_loads, start_load, wait_for_window

    settings = _settings()
    regulation = _regulation_of({r.provider: r for r in _regulations(settings)}, provider)
    if pause or resume:
        if (pause and resume) or tables or now:
            raise SystemExit("qoima snapshot: --pause and --resume take only the provider (the running snapshot "
                             "of its tables); e.g. qoima snapshot demo --pause")
        pause_loads(regulation, settings.regulation_env(), settings.run_dir / "loads", resume=resume)
        print(f"{provider}: snapshot " + ("resumed: it reads on from its last chunk" if resume else
                                          "paused: streaming continues; `qoima snapshot "
                                          f"{provider} --resume` reads on from where it stopped"))
        return
    tables = tables or [t.name for t in regulation.tables]
    for name in tables:
        try:
            regulation.table(name)
        except KeyError as exc:
            raise SystemExit(str(exc.args[0])) from None
    window = regulation.source.load_window
    if window is not None and not window.contains(datetime.now(timezone.utc)):
        if now:
            print(f"warning: {provider}'s minimum-load window is {window}; reading its tables now, outside it "
                  "(--now), loads its production database", file=sys.stderr)
        else:
            wait_for_window(regulation, tables, settings.run_dir / "snapshot-waits",
                            lambda line: print(line, flush=True))
    try:
        signal_id = start_load(regulation, tables, settings.regulation_env(), settings.run_dir / "loads")
    except (KeyError, ValueError) as exc:   # an undeclared table; a name a signal cannot carry
        raise SystemExit(str(exc.args[0])) from None
    print(f"incremental snapshot of {', '.join(tables)} requested (signal {signal_id}); streaming continues. "
          "Progress (rows read, loaded, rate, time left): qoima status.")


@app.command(rich_help_panel=CAPTURE,
             help="run the marker-mode poller in the foreground (sources with 'capture: marker')")
def poller() -> None:
    from connectors.marker.scheduler import run

    run(_settings())


@app.command("load-history", rich_help_panel=CAPTURE,
             help="load a historical CSV or Parquet file into a regulated table "
                  "through depersonalization and quarantine (R394 §21)")
def load_history_file(
        provider: Annotated[str, typer.Argument(help="provider id from its regulation")],
        table: Annotated[str, typer.Argument(help="schema.table as the regulation names it")],
        path: Annotated[Path, typer.Argument(
            help="CSV (UTF-8, CP1251 or UTF-16; ',' ';' or tab; header row) or Parquet")],
        no_progress: Annotated[bool, typer.Option(
            "--no-progress", help="no progress bar (it is off when not a TTY)")] = False) -> None:
    from connectors.history import HistoryError
    from model.regulation import RegulationError
    from streams.history_load import load_history
    from streams.keys import MasterKeyError

    try:
        summary = load_history(_settings(), provider, table, path, progress=not no_progress)
    except (HistoryError, RegulationError, MasterKeyError) as exc:
        raise SystemExit(f"qoima load-history: {exc}") from None
    print(summary.render())


# ---------------------------------------------------------------------------------- processing

@app.command(rich_help_panel=PROCESSING, help="run a processor worker in the foreground (QOIMA_PROCESSOR_WORKER "
             "numbers it, 0 by default)")
def processor() -> None:
    from streams.processor import run

    run(_settings())


@quarantine_app.command("replay", help="route quarantined events again with today's rules")
def quarantine_replay(table: Annotated[str | None, typer.Option(
        help="schema.table (default: every table)")] = None) -> None:
    from streams.replay import replay_quarantine

    settings = _settings()
    print(replay_quarantine(settings, _regulations(settings), table).render())


# ------------------------------------------------------------------------------------- loading

@sink_app.callback()
def sink(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is not None:
        return
    from sinks.clickhouse_sink import run
    from sinks.schema_evolution import SchemaEvolutionError

    try:
        run(_settings())
    except SchemaEvolutionError as exc:
        raise SystemExit(f"qoima sink: {exc}") from None


@sink_app.command("skip-held", help="after a failed depersonalization check: move the sink past the held batch "
                  "and delete its records (sink stopped)")
def sink_skip_held(topic: Annotated[str, typer.Argument(help="the topic of the held batch (in the incident)")],
                   partition: Annotated[int, typer.Argument(help="its partition (in the incident)")],
                   through_offset: Annotated[int, typer.Argument(
                       help="last offset of the held batch (in the incident)")]) -> None:
    from sinks.held import skip_held

    skip_held(_settings().kafka_bootstrap, topic, partition, through_offset)
    print(f"{topic}[{partition}]: sink moved past offset {through_offset}; records up to it deleted. "
          "Re-derive the held rows from the source (re-snapshot the table).")


# ---------------------------------------------------------------------------------- governance

@app.command(rich_help_panel=GOVERNANCE,
             help="the depersonalization check: clear identifiers in the warehouse and clean topics")
def scan(ctx: typer.Context,
         warehouse_only: Annotated[bool, typer.Option("--warehouse-only", help="scan the warehouse only")] = False,
         topics_only: Annotated[bool, typer.Option("--topics-only", help="scan the topics only")] = False) -> None:
    if warehouse_only and topics_only:
        raise typer.BadParameter("not allowed with --warehouse-only", ctx=ctx, param_hint="--topics-only")
    from governance.depersonalization_check import check

    settings = _settings()
    result = check(settings, _regulations(settings), dict(os.environ),
                   warehouse=not topics_only, topics=not warehouse_only, progress=print)
    for what, report in result.reports:
        print(report.render(what))
    if result.findings:
        raise SystemExit(f"depersonalization check FAILED: {result.findings} finding(s); critical incidents recorded")
    print("depersonalization check passed")


@app.command(rich_help_panel=GOVERNANCE, help="k-anonymity and l-diversity per table, now")
def risk() -> None:
    from governance.reidentification import check

    settings = _settings()
    risks = check(settings, _regulations(settings))
    if not risks:
        print("no table declares quasi-identifiers")
        return
    table = _table("table", "rows", "classes", "k", "min k", "l", "rows at risk", "",
                   right=("rows", "classes", "k", "min k", "l", "rows at risk"))
    for r in risks:
        table.add_row(f"{r.provider}.{r.table}", str(r.rows), str(r.classes), str(r.k), str(r.k_threshold),
                      "-" if r.l_diversity is None else str(r.l_diversity), str(r.rows_at_risk),
                      "BELOW k" if r.below_threshold else "", style="red" if r.below_threshold else None)
    Console().print(table)
    if any(r.below_threshold for r in risks):
        raise SystemExit("re-identification risk above the declared threshold; incidents recorded")


@app.command(rich_help_panel=GOVERNANCE, help="run the periodic assessor in the foreground")
def assessor() -> None:
    from governance.assessor import run

    run(_settings())


@dq_app.command("report", help="the latest recorded assessment of every table")
def dq_report(as_json: JsonFlag = False) -> None:
    from governance import quality_assessment as dq
    from sinks.clickhouse_users import writer_client

    report = dq.latest(writer_client(_settings()))
    print(json.dumps(report, indent=2, ensure_ascii=False) if as_json else dq.render(report))


@dq_app.command("assess", help="assess every table now and record it")
def dq_assess(as_json: JsonFlag = False) -> None:
    from governance import quality_assessment as dq
    from sinks.clickhouse_users import writer_client

    settings = _settings()
    client = writer_client(settings)
    report, failed = dq.assess_and_record(client, _regulations(settings))
    print(json.dumps(report, indent=2, ensure_ascii=False) if as_json else dq.render(report))
    if failed:
        raise SystemExit(f"qoima dq assess: not assessed: {'; '.join(failed)}")


def _journal(settings: Settings):
    from governance.incident_journal import IncidentJournal
    from sinks.clickhouse_users import writer_client

    return IncidentJournal(writer_client(settings))


@incidents_app.command("list", help="incidents with their current status, latest first")
def incidents_list(status: Annotated[IncidentStatus | None, typer.Option(help="only incidents in this status")] = None,
                   table: Annotated[str | None, typer.Option(help="schema.table as the regulation names it")] = None,
                   as_json: JsonFlag = False) -> None:
    from governance.incident_journal import TransitionError, render_list

    try:
        incidents = _journal(_settings()).list(status=status, table=table)
    except TransitionError as exc:
        raise SystemExit(f"qoima incidents list: {exc}") from None
    print(json.dumps([i.as_json() for i in incidents], indent=2, ensure_ascii=False) if as_json
          else render_list(incidents))


@incidents_app.command("show", help="one incident, its transitions and its recent detections")
def incidents_show(key: IncidentKey) -> None:
    from governance.incident_journal import render_show

    journal = _journal(_settings())
    incident = journal.get(key)
    if incident is None:
        raise SystemExit(f"no incident {key!r} in the journal; `qoima incidents list` shows the keys")
    print(render_show(incident, journal.transitions(key), journal.detections(key)))


def _move(verb: str, key: str, by: str | None, note: str | None) -> None:
    from governance.incident_journal import ACTIONS, TransitionError, iso, move
    from model.regulation import RegulationError

    settings = _settings()
    journal = _journal(settings)
    try:
        done = move(settings, journal, key, ACTIONS[verb], by or os.environ.get("USER") or "operator", note or "",
                    recorded=lambda t: print(f"{t.incident_key}: {t.status} by {t.actor} at {iso(t.ts)}"))
    except TransitionError as exc:
        raise SystemExit(f"qoima incidents {verb}: {exc}") from None
    except RegulationError as exc:
        raise SystemExit(str(exc)) from None
    for table, rows in done.released.items():
        print(f"released {rows} held row(s) of {table} into the analysts' table")


def _mover(verb: str):
    def move_incident(key: IncidentKey,
                      by: Annotated[str | None, typer.Option(help="who (default: $USER, else 'operator')")] = None,
                      note: Annotated[str | None, typer.Option(
                          help="why, or what was done (stored in the journal; no personal data)")] = None) -> None:
        _move(verb, key, by, note)

    move_incident.__name__ = f"incidents_{verb}"
    return move_incident


for _verb, _help in MOVES.items():
    incidents_app.command(_verb, help=_help)(_mover(_verb))


# -------------------------------------------------------------------------------------- the demo

@demo_app.command("load", help="drive inserts, updates and deletes at the source until stopped")
def demo_load(rate: Annotated[float, typer.Option(help="changes per second")] = 50.0,
              duration: Annotated[float | None, typer.Option(help="seconds to run (default: until stopped)")] = None,
              metrics: Annotated[bool, typer.Option("--metrics", help="serve Prometheus metrics on the demo port "
                                                    "(what `qoima up` does for its own demo load)")] = False) -> None:
    from infra.demo.load import load

    settings = _settings()
    if rate <= 0:
        raise SystemExit("--rate must be a positive number of changes per second")
    load(settings, rate=rate, duration=duration, serve_metrics=metrics)


@demo_app.command("fill", help="add N generated persons to the demo register (population.persons), by COPY, "
                  "for a load of national size")
def demo_fill(rows: Annotated[int, typer.Option("--rows", help="persons to add")] = 1_000_000,
              seed: Annotated[int | None, typer.Option(help="random seed, for the same rows again")] = None,
              defect_rate: Annotated[float, typer.Option(help="share of rows with a deliberate defect "
                                                         "(bad IIN check digit, no KATO, bad phone, future birth)")]
              = 0.02) -> None:
    from tqdm import tqdm

    from infra.demo.source import fill_persons
    from infra.stack import SOURCE_DB, LocalStack

    if rows <= 0:
        raise SystemExit("--rows must be a positive number of persons")
    if not 0 <= defect_rate <= 1:
        raise SystemExit("--defect-rate is a share between 0 and 1, e.g. 0.02")
    conninfo = LocalStack(_settings()).pg_admin_conninfo(SOURCE_DB)
    with tqdm(total=rows, unit="row", unit_scale=True, desc="population.persons") as bar:
        total = fill_persons(conninfo, rows, seed=seed, defect_rate=defect_rate,
                             progress=lambda written: bar.update(written - bar.n))
    print(f"population.persons holds {total:,} rows; with CDC running, they stream to the warehouse now")


@demo_app.command("webhook", help="receive the demo tables' incident notifications and log them")
def demo_webhook() -> None:
    from infra.demo.webhook import serve

    settings = _settings()
    serve(settings.host, settings.ports.demo_webhook)


@app.command(rich_help_panel=GOVERNANCE, help="the provider's data passport (DM385 Appendix 1) from its regulation "
             "and its source's live catalog; a changed one is kept as a new version in qoima_meta")
def passport(provider: Annotated[str, typer.Argument(help="the provider, as its regulation names it")],
             fmt: Annotated[Literal["csv", "json", "html"], typer.Option("--format", help="csv: the structure "
                            "description with Appendix 1's columns; json and html: the whole passport")] = "html",
             out: Annotated[Path | None, typer.Option(help="write to this file instead of printing")] = None) -> None:
    from governance.passport import catalog, export
    from governance.passport.document import build, read_sources
    from sinks.clickhouse_users import writer_client

    settings = _settings()
    regulation = _regulation_of({r.provider: r for r in _regulations(settings)}, provider)
    sources = read_sources(regulation, settings.regulation_env())
    document = build(regulation, sources, settings.key_id)
    version = None
    unseen = [name for name, source in sources.items() if source is None]
    if unseen:
        print(f"qoima passport: the capture account cannot see {', '.join(unseen)}; their structure is the "
              "regulation's declaration, and no version is recorded (`qoima provider check` says why)", file=sys.stderr)
    else:
        recorded = catalog.record(writer_client(settings), regulation, document)
        version = recorded.version
        print(f"passport of {provider}: version {version}" + (f" (new: {recorded.reason})" if recorded.new else ""),
              file=sys.stderr)
    if not document.declared:
        print(f"qoima passport: {provider}'s regulation declares no `passport:` block; only what Qoima derives is "
              "shown (docs/passport.md)", file=sys.stderr)
    text = export.render(document, fmt, version)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        print(f"written to {out}", file=sys.stderr)


@pd236_app.command("status", help="access events recorded per table and path, and what the state service has "
                   "not accepted yet")
def pd236_status(as_json: JsonFlag = False) -> None:
    from governance.pd236.status import render, status
    from sinks.clickhouse_users import writer_client

    settings = _settings()
    report = status(writer_client(settings), _regulations(settings))
    print(json.dumps(report, indent=2, ensure_ascii=False) if as_json else render(report))


@pd236_app.command("test-act", help="send ten requests with security tokens to the test endpoint, require ten "
                   "successful responses, and write the testing act (PD236 §11) as a PDF")
def pd236_test_act(out: Annotated[Path | None, typer.Option(help="where to write the PDF (default: "
                                                                  "QOIMA_HOME/pd236/test-act-<time>.pdf)")] = None,
                   url: Annotated[str | None, typer.Option(help="the test endpoint (default: QOIMA_PD236_TEST_URL, "
                                                                "else the local stand-in)")] = None) -> None:
    from datetime import datetime, timezone

    from governance.pd236.reporter import issuer_for
    from governance.pd236.test_act import REQUESTS, TestActError, test_act
    from governance.pd236.token import TokenError

    settings = _settings()
    endpoint = url or settings.pd236_test_endpoint
    path = out or settings.home / "pd236" / f"test-act-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.pdf"
    try:
        exchanges, written = test_act(endpoint, issuer_for(settings), path)
    except (TokenError, TestActError) as exc:
        raise SystemExit(f"qoima pd236 test-act: {exc}") from None
    for e in exchanges:
        print(f"{e.number:>2}  {e.request_id}  token {e.jti}  HTTP {e.status or '-'}  "
              + (f"accepted, receipt {e.receipt}" if e.accepted else f"FAILED: {e.error or 'not accepted'}"))
    ok = sum(e.accepted for e in exchanges)
    if written is None:
        raise SystemExit(f"qoima pd236 test-act: {ok} of {REQUESTS} requests succeeded; PD236 §11 needs "
                         f"{REQUESTS}, so no act was written. Fix what the failures say and run it again.")
    print(f"{ok} of {REQUESTS} successful responses; testing act written to {written}")


@pd236_app.command("standin", help="run the local stand-in of the state service in the foreground "
                   "(`qoima up` starts it)")
def pd236_standin() -> None:
    from infra.pd236_standin import serve

    serve(_settings())


# ----------------------------------------------------------------------------------- entry point

def _usage_error(exc: typer.TyperException) -> str:
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if ctx is not None else "qoima"
    # typer checks choices with pydantic, whose messages start with its error class.
    message = " ".join(exc.format_message().replace("Value error, ", "").split())
    return f"{where}: error: {message} (see `{where} --help`)"


# A component that does not answer is an operator's situation, not a bug: one line naming it and
# the fix, never a traceback (issue 14). Matched by class, so no driver is imported for it.
_CHECK = "`qoima provider check <provider>` names what is missing (a table, the signal table, a grant) and the fix"
_UNREACHABLE = {
    ("psycopg", "OperationalError"): ("the PostgreSQL database did not answer", "is it running, and are the "
                                      "regulation's host, port and password reference right? `qoima provider check "
                                      "<provider>` says more"),
    ("pymysql.err", "OperationalError"): ("the MariaDB database did not answer", "is it running, and are the "
                                          "regulation's host, port and password reference right? `qoima provider "
                                          "check <provider>` says more"),
    # A statement the source refused: an object or a grant capture needs is not there.
    ("psycopg.errors", "UndefinedTable"): ("the PostgreSQL source refused a statement", _CHECK),
    ("psycopg.errors", "InvalidSchemaName"): ("the PostgreSQL source refused a statement", _CHECK),
    ("psycopg.errors", "UndefinedColumn"): ("the PostgreSQL source refused a statement", _CHECK),
    ("psycopg.errors", "InsufficientPrivilege"): ("the PostgreSQL source refused a statement", _CHECK),
    ("pymysql.err", "ProgrammingError"): ("the MariaDB source refused a statement", _CHECK),
    ("clickhouse_connect.driver.exceptions", "OperationalError"): ("ClickHouse did not answer", "start the stack with "
                                                                   "`qoima up`, or check QOIMA_HOME and "
                                                                   "QOIMA_PORT_SHIFT"),
    ("cimpl", "KafkaException"): ("Kafka did not answer", "start the stack with `qoima up`, or check QOIMA_HOME and "
                                  "QOIMA_PORT_SHIFT"),
    ("requests.exceptions", "ConnectionError"): ("a service of the stack did not answer", "start the stack with "
                                                 "`qoima up`, or check QOIMA_HOME and QOIMA_PORT_SHIFT"),
}


def _unreachable(exc: BaseException) -> str | None:
    for cls in type(exc).__mro__:
        found = _UNREACHABLE.get((cls.__module__, cls.__name__))
        if found:
            what, fix = found
            detail = " ".join(str(exc).split())[:300] or type(exc).__name__
            return f"qoima: {what} ({detail}); {fix}"
    return None


def main(argv: list[str] | None = None) -> None:
    """`qoima` and `python -m qoima`. Returns when the command succeeded; otherwise raises
    SystemExit with the message or the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        code = app(args=argv, prog_name="qoima", standalone_mode=False)
    except typer.TyperException as exc:   # click's errors (vendored by typer): usage errors exit 2
        # A group given no command has printed its help already (typer's rich_utils tells it by name too).
        if type(exc).__name__ != "NoArgsIsHelpError":
            print(_usage_error(exc), file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        raise SystemExit("Aborted.") from None
    except Exception as exc:  # noqa: BLE001 - only an unreachable component is turned into a message
        message = _unreachable(exc)
        if message is None:
            raise
        raise SystemExit(message) from None
    if code:   # click's own exits: 0 after --help, 130 after Ctrl-C
        raise SystemExit(code)
