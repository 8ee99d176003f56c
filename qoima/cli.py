"""The `qoima` command line. Thin: it parses arguments and calls the package that owns the work."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from model.settings import Settings, SettingsError


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise SystemExit(f"qoima: {exc}") from None


def _regulations(settings: Settings):
    from model.regulation import RegulationError, load_all

    try:
        return load_all(settings.regulations_dir, settings.regulation_env())
    except RegulationError as exc:
        raise SystemExit(str(exc)) from None


def cmd_up(args) -> None:
    from infra.processes import StackError
    from infra.stack import LocalStack

    settings = _settings()
    try:
        LocalStack(settings).up(demo_rate=None if args.no_demo else args.demo_rate)
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


def cmd_down(args) -> None:
    from infra.stack import LocalStack

    LocalStack(_settings()).down(wipe=args.wipe)


def cmd_status(args) -> None:
    from governance.status import collect, render

    settings = _settings()
    report = collect(settings, _regulations(settings))
    print(json.dumps(report, indent=2) if args.json else render(report))


def cmd_connector(args) -> None:
    from connectors.connect_client import ConnectClient, ConnectError
    from connectors.debezium_config import connector_config

    settings = _settings()
    client = ConnectClient(settings.connect_url)
    regulations = {r.provider: r for r in _regulations(settings)}
    try:
        if args.action == "list":
            print("\n".join(client.list()) or "(no connectors)")
            return
        chosen = [regulations[args.provider]] if args.provider else list(regulations.values())
        for regulation in chosen:
            name = regulation.connector_name
            if regulation.polled:  # no Debezium connector: `qoima poller` reads it
                print(f"{regulation.provider}: capture 'marker', no connector (polled by `qoima poller`)")
                continue
            if args.action == "register":
                config = connector_config(regulation)
                problems = client.validate(config)
                if problems:
                    raise SystemExit(f"{name}: Kafka Connect rejects the config:\n  " + "\n  ".join(problems))
                print(f"{name}: {client.upsert(name, config)}")
            elif args.action == "status":
                print(json.dumps(client.status(name), indent=2))
            else:
                getattr(client, args.action)(name)
                print(f"{name}: {args.action} requested")
    except ConnectError as exc:
        raise SystemExit(str(exc)) from None
    except KeyError:
        raise SystemExit(f"no regulation for provider {args.provider!r}; known: {', '.join(regulations)}") from None


def cmd_regulation_check(args) -> None:
    from model.regulation import RegulationError, load_regulation

    settings = _settings()
    paths = args.files or sorted(settings.regulations_dir.glob("*.yaml"))
    failed = False
    for path in paths:
        try:
            regulation = load_regulation(path, settings.regulation_env())
            print(f"{path}: ok (provider {regulation.provider}, {len(regulation.tables)} tables)")
        except RegulationError as exc:
            print(exc, file=sys.stderr)
            failed = True
    if failed:
        raise SystemExit(1)


def cmd_scan(args) -> None:
    from governance.depersonalization_check import known_values, scan_topics, scan_warehouse
    from sinks.clickhouse_users import writer_client
    from schemas.incidents import Detection, IncidentPublisher

    settings = _settings()
    regulations = _regulations(settings)
    known = known_values(regulations, dict(os.environ))
    print(f"known values from the sources: {len(known.names)} name words, {len(known.phones)} phones")
    reports = []
    if not args.topics_only:
        reports.append(("warehouse", scan_warehouse(writer_client(settings), regulations, known)))
    if not args.warehouse_only:
        reports.append(("topics", scan_topics(settings, regulations, known)))
    leaks = sum(sum(report.findings.values()) for _, report in reports)
    publisher = IncidentPublisher(settings.kafka_bootstrap) if leaks else None
    for what, report in reports:
        print(report.render(what))
        for (where, kind), count in report.findings.items():
            publisher.publish(Detection(
                "qoima", where, "depersonalization_check", "other", "critical", count,
                f"`qoima scan` found {count} clear {kind} value(s) in {where}", "scan"))
    if leaks:
        raise SystemExit(f"depersonalization check FAILED: {leaks} finding(s); critical incidents recorded")
    print("depersonalization check passed")


def cmd_risk(args) -> None:
    from governance.assessor import detection
    from governance.reidentification import assess, render
    from sinks.clickhouse_users import writer_client
    from schemas.incidents import IncidentPublisher

    settings = _settings()
    client = writer_client(settings)
    risks = [r for reg in _regulations(settings) for t in reg.tables if (r := assess(client, reg, t))]
    print(render(risks) if risks else "no table declares quasi-identifiers")
    below = [r for r in risks if r.below_threshold]
    if below:
        publisher = IncidentPublisher(settings.kafka_bootstrap)
        for risk in below:
            publisher.publish(detection(risk))
        raise SystemExit("re-identification risk above the declared threshold; incidents recorded")


def cmd_assessor(args) -> None:
    from governance.assessor import run

    run(_settings())


def cmd_dq(args) -> None:
    from governance import quality_assessment as dq
    from sinks.clickhouse_users import writer_client

    settings = _settings()
    client = writer_client(settings)
    failed: list[str] = []
    if args.dq_command == "assess":
        assessments, failed = dq.assess_all(client, _regulations(settings))
        dq.ensure_table(client)
        dq.record(client, assessments)
        report = dq.report_of(assessments)
    else:
        report = dq.latest(client)
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else dq.render(report))
    if failed:
        raise SystemExit(f"qoima dq assess: not assessed: {'; '.join(failed)}")


def cmd_sink_skip(args) -> None:
    from sinks.held import skip_held

    settings = _settings()
    skip_held(settings.kafka_bootstrap, args.topic, args.partition, args.through_offset)
    print(f"{args.topic}[{args.partition}]: sink moved past offset {args.through_offset}; records up to it deleted. "
          "Re-derive the held rows from the source (re-snapshot the table).")


def cmd_snapshot(args) -> None:
    from connectors.snapshot import request_snapshot

    settings = _settings()
    regulations = {r.provider: r for r in _regulations(settings)}
    if args.provider not in regulations:
        raise SystemExit(f"no regulation for provider {args.provider!r}; known: {', '.join(regulations)}")
    regulation = regulations[args.provider]
    tables = args.tables or [t.name for t in regulation.tables]
    try:
        signal_id = request_snapshot(regulation, tables, settings.regulation_env())
    except KeyError as exc:
        raise SystemExit(str(exc.args[0])) from None
    print(f"incremental snapshot of {', '.join(tables)} requested (signal {signal_id}); streaming continues. "
          "Progress: the connector's log and qoima status.")


def cmd_processor(args) -> None:
    from streams.app import run

    run(_settings())


def cmd_poller(args) -> None:
    from connectors.marker_poller import run

    run(_settings())


def cmd_sink(args) -> None:
    from sinks.clickhouse_sink import run
    from sinks.schema_evolution import SchemaEvolutionError

    try:
        run(_settings())
    except SchemaEvolutionError as exc:
        raise SystemExit(f"qoima sink: {exc}") from None


def cmd_demo_load(args) -> None:
    from infra.demo.cli import load

    load(_settings(), rate=args.rate, duration=args.duration, serve_metrics=args.metrics)


def cmd_quarantine_replay(args) -> None:
    from schemas.avro_codec import codec_for
    from streams.keys import load_schedule
    from streams.replay import replay
    from streams.router import Router
    from schemas.schema_history import SchemaHistory

    settings = _settings()
    regulations = _regulations(settings)
    # Quarantined under an earlier regulation: read with the schema it was written with.
    codec = codec_for(regulations, SchemaHistory(settings.kafka_bootstrap).lookup)
    keys = load_schedule(settings.key_id, dict(os.environ), settings.master_key_file)
    # Stateless rules only: the processor's uniqueness and integrity state lives in its own
    # Faust tables, and a replay must not change it behind the processor's back.
    summary = replay(settings.kafka_bootstrap, Router(regulations, keys, codec), codec, table=args.table)
    print(summary.render())


def cmd_demo_webhook(args) -> None:
    from infra.demo.webhook import serve

    settings = _settings()
    serve(settings.host, settings.ports.demo_webhook)


def cmd_load_history(args) -> None:
    from connectors.history import HistoryError
    from streams.history_load import load_history
    from model.regulation import RegulationError
    from streams.keys import MasterKeyError

    try:
        summary = load_history(_settings(), args.provider, args.table, args.path, progress=not args.no_progress)
    except (HistoryError, RegulationError, MasterKeyError) as exc:
        raise SystemExit(f"qoima load-history: {exc}") from None
    print(summary.render())


def cmd_incidents(args) -> None:
    from governance.incident_journal import (ACTIONS, IncidentJournal, TransitionError, iso, render_list,
                                             render_show)
    from sinks.clickhouse_users import writer_client

    settings = _settings()
    client = writer_client(settings)
    journal = IncidentJournal(client)
    try:
        if args.incidents_command == "list":
            incidents = journal.list(status=args.status, table=args.table)
            print(json.dumps([i.as_json() for i in incidents], indent=2, ensure_ascii=False) if args.json
                  else render_list(incidents))
        elif args.incidents_command == "show":
            incident = journal.get(args.key)
            if incident is None:
                raise SystemExit(f"no incident {args.key!r} in the journal; `qoima incidents list` shows the keys")
            print(render_show(incident, journal.transitions(args.key), journal.detections(args.key)))
        else:
            actor = args.by or os.environ.get("USER") or "operator"
            done = journal.record(args.key, ACTIONS[args.incidents_command], actor, args.note or "")
            print(f"{done.incident_key}: {done.status} by {done.actor} at {iso(done.ts)}")
            if done.status == "resolved":
                from sinks.release import release  # DM385 §49: lift the hold once the error is fixed

                for table, rows in release(client, _regulations(settings), journal.resolved_keys()).items():
                    print(f"released {rows} held row(s) of {table} into the analysts' table")
    except TransitionError as exc:
        raise SystemExit(f"qoima incidents {args.incidents_command}: {exc}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qoima", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the local stack, register the demo source, start the demo load")
    up.add_argument("--demo-rate", type=float, default=50.0, help="demo changes per second (default 50)")
    up.add_argument("--no-demo", action="store_true", help="do not start the demo load")
    up.set_defaults(func=cmd_up)

    down = sub.add_parser("down", help="stop every process the stack started (by pid), keeping data")
    down.add_argument("--wipe", action="store_true", help="also delete the stack's data")
    down.set_defaults(func=cmd_down)

    status = sub.add_parser("status", help="connector state, rows loaded and freshness per table")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    connector = sub.add_parser("connector", help="manage the Debezium connectors through Kafka Connect")
    connector.add_argument("action", choices=["register", "status", "pause", "resume", "restart", "delete", "list"])
    connector.add_argument("provider", nargs="?", help="provider id from its regulation (default: all)")
    connector.set_defaults(func=cmd_connector)

    regulation = sub.add_parser("regulation", help="interaction regulation files")
    regulation_sub = regulation.add_subparsers(dest="regulation_command", required=True)
    check = regulation_sub.add_parser("check", help="validate regulation files")
    check.add_argument("files", nargs="*")
    check.set_defaults(func=cmd_regulation_check)

    scan = sub.add_parser("scan", help="the depersonalization check: clear identifiers in the warehouse and clean topics")
    scope = scan.add_mutually_exclusive_group()
    scope.add_argument("--warehouse-only", action="store_true")
    scope.add_argument("--topics-only", action="store_true")
    scan.set_defaults(func=cmd_scan)
    sub.add_parser("risk", help="k-anonymity and l-diversity per table, now").set_defaults(func=cmd_risk)
    sub.add_parser("assessor", help="run the periodic assessor in the foreground").set_defaults(func=cmd_assessor)
    dq = sub.add_parser("dq", help="data-quality assessment (DM385 §53-55): the seven indicators per table")
    dq.set_defaults(func=cmd_dq)
    dq_sub = dq.add_subparsers(dest="dq_command", required=True)
    for verb, what in (("report", "the latest recorded assessment of every table"),
                       ("assess", "assess every table now and record it")):
        dq_sub.add_parser(verb, help=what).add_argument("--json", action="store_true")
    quarantine = sub.add_parser("quarantine", help="the quarantine topic")
    quarantine_sub = quarantine.add_subparsers(dest="quarantine_command", required=True)
    replay = quarantine_sub.add_parser("replay", help="route quarantined events again with today's rules")
    replay.add_argument("--table", help="schema.table (default: every table)")
    replay.set_defaults(func=cmd_quarantine_replay)
    snapshot = sub.add_parser("snapshot", help="re-snapshot tables through Debezium's incremental snapshot")
    snapshot.add_argument("provider")
    snapshot.add_argument("tables", nargs="*", help="schema.table (default: every table of the provider)")
    snapshot.set_defaults(func=cmd_snapshot)
    sub.add_parser("processor", help="run the Faust processor in the foreground").set_defaults(func=cmd_processor)
    sub.add_parser("poller", help="run the marker-mode poller in the foreground (sources with 'capture: marker')"
                   ).set_defaults(func=cmd_poller)
    sink = sub.add_parser("sink", help="run the ClickHouse sink in the foreground (or act on it)")
    sink.set_defaults(func=cmd_sink)
    sink_sub = sink.add_subparsers(dest="sink_command")
    skip = sink_sub.add_parser("skip-held", help="after a failed depersonalization check: move the sink past the "
                                                 "held batch and delete its records (sink stopped)")
    skip.add_argument("topic")
    skip.add_argument("partition", type=int)
    skip.add_argument("through_offset", type=int, help="last offset of the held batch (in the incident)")
    skip.set_defaults(func=cmd_sink_skip)

    demo = sub.add_parser("demo", help="the demo source")
    demo_sub = demo.add_subparsers(dest="demo_command", required=True)
    load = demo_sub.add_parser("load", help="drive inserts, updates and deletes at the source until stopped")
    load.add_argument("--rate", type=float, default=50.0, help="changes per second (default 50)")
    load.add_argument("--duration", type=float, default=None, help="seconds to run (default: until stopped)")
    load.add_argument("--metrics", action="store_true", help="serve Prometheus metrics on the demo port "
                                                             "(what `qoima up` does for its own demo load)")
    load.set_defaults(func=cmd_demo_load)
    demo_sub.add_parser("webhook", help="receive the demo tables' incident notifications and log them"
                        ).set_defaults(func=cmd_demo_webhook)

    history = sub.add_parser("load-history", help="load a historical CSV or Parquet file into a regulated table "
                             "through depersonalization and quarantine (R394 §21)")
    history.add_argument("provider", help="provider id from its regulation")
    history.add_argument("table", help="schema.table as the regulation names it")
    history.add_argument("path", help="CSV (UTF-8, CP1251 or UTF-16; ',' ';' or tab; header row) or Parquet")
    history.add_argument("--no-progress", action="store_true", help="no progress bar (it is off when not a TTY)")
    history.set_defaults(func=cmd_load_history)

    incidents = sub.add_parser("incidents", help="the incident journal (DM385 §49): list, show, and move incidents "
                               "through open -> acknowledged -> resolved -> closed")
    incidents.set_defaults(func=cmd_incidents)
    incidents_sub = incidents.add_subparsers(dest="incidents_command", required=True)
    listing = incidents_sub.add_parser("list", help="incidents with their current status, latest first")
    listing.add_argument("--status", choices=["open", "acknowledged", "resolved", "closed"])
    listing.add_argument("--table", help="schema.table as the regulation names it")
    listing.add_argument("--json", action="store_true")
    show = incidents_sub.add_parser("show", help="one incident, its transitions and its recent detections")
    show.add_argument("key", help="incident key: provider/table/rule")
    for verb, what in (("ack", "acknowledge: someone is on it"), ("resolve", "the problem is fixed"),
                       ("close", "the one who raised it confirms the fix"),
                       ("reopen", "a resolved incident is not fixed after all")):
        move = incidents_sub.add_parser(verb, help=what)
        move.add_argument("key", help="incident key: provider/table/rule")
        move.add_argument("--by", help="who (default: $USER, else 'operator')")
        move.add_argument("--note", help="why, or what was done (stored in the journal; no personal data)")
    return parser


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    args.func(args)
