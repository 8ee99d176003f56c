"""The `qoima` command line (qoima/cli.py): every command, argument and flag users have, their
help, and what bad input gives: one line on stderr and a non-zero exit, never a traceback.
Nothing here reaches a server: the commands that would are given bad input or fakes."""
from __future__ import annotations

import subprocess
import os
import sys
from pathlib import Path
from typing import get_args

import pytest
import typer
from typer.testing import CliRunner

import qoima.cli as cli
from governance.incident_journal import ACTIONS, STATUSES

REPO = Path(__file__).resolve().parents[2]

# The whole surface, as README.md, docs/operations.md and the stack (infra/) spell it. Options:
# every spelling, then a default or FLAG; arguments: NAME, `?` optional, `...` any number.
SURFACE = {
    "up": ["--demo-rate=50.0", "--no-demo FLAG"],
    "down": ["--wipe FLAG"],
    "status": ["--json FLAG"],
    "connector": ["ACTION", "PROVIDER?"],
    "regulation": [],
    "regulation check": ["FILES...?"],
    "regulation draft": ["PROVIDER", "--schema=None", "--host=None", "--port=None", "--database=None", "--user=None",
                         "--password-file=None", "--dbms='postgresql'", "--output/-o=None"],
    "provider": [],
    "provider check": ["PROVIDER"],
    "provider sql": ["PROVIDER"],
    "provider apply": ["PROVIDER", "--now FLAG"],
    "provider remove": ["PROVIDER", "--drop-data FLAG", "--yes FLAG"],
    "snapshot": ["PROVIDER", "TABLES...?", "--now FLAG", "--pause FLAG", "--resume FLAG"],
    "poller": [],
    "load-history": ["PROVIDER", "TABLE", "PATH", "--no-progress FLAG"],
    "processor": [],
    "quarantine": [],
    "quarantine replay": ["--table=None"],
    "sink": [],
    "sink skip-held": ["TOPIC", "PARTITION", "THROUGH_OFFSET"],
    "scan": ["--warehouse-only FLAG", "--topics-only FLAG"],
    "risk": [],
    "assessor": [],
    "dq": [],
    "dq report": ["--json FLAG"],
    "dq assess": ["--json FLAG"],
    "incidents": [],
    "incidents list": ["--status=None", "--table=None", "--json FLAG"],
    "incidents show": ["KEY"],
    **{f"incidents {verb}": ["KEY", "--by=None", "--note=None"] for verb in ("ack", "resolve", "close", "reopen")},
    "passport": ["PROVIDER", "--format='html'", "--out=None"],
    "pd236": [],
    "pd236 status": ["--json FLAG"],
    "pd236 test-act": ["--out=None", "--url=None"],
    "pd236 standin": [],
    "demo": [],
    "demo load": ["--rate=50.0", "--duration=None", "--metrics FLAG"],
    "demo fill": ["--rows=1000000", "--seed=None", "--defect-rate=0.02"],
    "demo webhook": [],
}


def _describe(param) -> str:
    if param.param_type_name == "argument":
        return param.name.upper() + ("..." if param.nargs == -1 else "") + ("" if param.required else "?")
    spellings = "/".join([*param.opts, *param.secondary_opts])
    return f"{spellings} FLAG" if param.is_flag else f"{spellings}={param.default!r}"


def _surface(command, path: tuple[str, ...] = ()) -> dict[str, list[str]]:
    found = {" ".join(path): [_describe(p) for p in command.params]} if path else {}
    for name, sub in getattr(command, "commands", {}).items():
        found.update(_surface(sub, (*path, name)))
    return found


def _fails(argv: list[str], capsys, code: int) -> str:
    """Run `qoima argv`; it must exit with `code` and one line on stderr. Returns that line."""
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    err = capsys.readouterr().err
    if isinstance(exited.value.code, str):      # Python prints the message and exits 1
        status, message = 1, exited.value.code
    else:
        status, message = exited.value.code, err.strip()
    assert status == code, (argv, exited.value.code, err)
    assert message and "\n" not in message and "Traceback" not in err, (argv, err)
    return message


def test_every_command_and_flag_is_kept():
    assert _surface(typer.main.get_command(cli.app)) == SURFACE


def test_choices_match_the_model():
    assert get_args(cli.IncidentStatus) == STATUSES
    assert get_args(cli.ConnectorAction) == ("register", "status", "pause", "resume", "restart", "delete", "list")
    assert set(cli.MOVES) == set(ACTIONS)
    from connectors.connect_client import ConnectClient

    for action in set(get_args(cli.ConnectorAction)) - {"register"}:    # register: validate, then upsert
        assert callable(getattr(ConnectClient, action)), action


@pytest.mark.parametrize("path", ["", *SURFACE])
def test_help_of_every_command(path):
    result = CliRunner().invoke(cli.app, [*path.split(), "--help"], prog_name="qoima")
    assert result.exit_code == 0, result.output
    assert f"Usage: qoima {path}".rstrip() in " ".join(result.output.split())
    short = CliRunner().invoke(cli.app, [*path.split(), "-h"], prog_name="qoima")
    assert short.exit_code == 0 and short.output == result.output


def test_no_command_prints_the_help_and_fails(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main([])
    assert exited.value.code == 2 and "Usage: qoima" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        cli.main(["incidents"])
    assert exited.value.code == 2 and "Usage: qoima incidents" in capsys.readouterr().out


def test_help_returns(capsys):
    cli.main(["--help"])
    assert "incidents" in capsys.readouterr().out


@pytest.mark.parametrize("argv, expected", [
    (["nope"], "qoima: error: No such command 'nope'"),
    (["incidents", "list", "--status", "fixed"], "qoima incidents list: error: Invalid value for '--status': "
                                                 "'fixed' is not one of 'open', 'acknowledged', 'resolved', 'closed'"),
    (["incidents", "ack"], "qoima incidents ack: error: Missing argument 'key'"),
    (["sink", "skip-held", "qoima.clean.demo.x", "first", "7"], "Invalid value for 'partition'"),
    (["connector", "bogus"], "qoima connector: error: Invalid value for 'action'"),
    (["scan", "--warehouse-only", "--topics-only"], "--topics-only: not allowed with --warehouse-only"),
    (["status", "--no-json"], "No such option: --no-json"),
    (["dq", "report", "extra"], "unexpected extra argument"),
])
def test_usage_errors_are_one_line_and_exit_2(argv, expected, capsys):
    message = _fails(argv, capsys, 2)
    assert expected in message and message.endswith("--help`)")


def test_settings_errors_are_one_line_and_exit_1(monkeypatch, capsys):
    monkeypatch.setenv("QOIMA_PORT_SHIFT", "many")
    message = _fails(["demo", "load"], capsys, 1)
    assert message.startswith("qoima: QOIMA_PORT_SHIFT='many'")


def test_regulation_errors_name_the_file_and_exit_1(monkeypatch, capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("provider: x\n", encoding="utf-8")
    monkeypatch.setenv("QOIMA_HOME", str(tmp_path))
    with pytest.raises(SystemExit) as exited:
        cli.main(["regulation", "check", str(bad)])
    captured = capsys.readouterr()
    assert exited.value.code == 1 and str(bad) in captured.err and "Traceback" not in captured.err
    monkeypatch.setenv("QOIMA_REGULATIONS_DIR", str(tmp_path))
    with pytest.raises(SystemExit, match=str(bad)):          # every command that reads the regulations
        cli.main(["quarantine", "replay"])


def test_a_non_positive_demo_rate_is_refused(monkeypatch, capsys, unit_settings):
    monkeypatch.setattr(cli, "_settings", lambda: unit_settings)
    assert _fails(["demo", "load", "--rate", "0"], capsys, 1) == "--rate must be a positive number of changes per second"


def test_resolving_prints_the_released_rows(monkeypatch, capsys, unit_settings):
    import governance.incident_journal as journal_module
    import sinks.clickhouse_users as users
    from tests.unit.test_incident_journal import KEY, FakeClient, incident_row

    monkeypatch.setattr(users, "writer_client", lambda settings: FakeClient([incident_row("acknowledged")]))
    monkeypatch.setattr(cli, "_settings", lambda: unit_settings)
    monkeypatch.setattr(journal_module, "load_all", lambda directory, environ: [])
    monkeypatch.setattr(journal_module, "release", lambda client, regulations, keys: {"social.payments": 1})
    cli.main(["incidents", "resolve", KEY, "--by", "tester", "--note", "amount confirmed"])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{KEY}: resolved by tester at ")
    assert out[1:] == ["released 1 held row(s) of social.payments into the analysts' table"]


def test_sink_alone_runs_the_sink_and_skip_held_does_not(monkeypatch, capsys, unit_settings):
    import sinks.clickhouse_sink as clickhouse_sink
    import sinks.held as held

    ran = []
    monkeypatch.setattr(cli, "_settings", lambda: unit_settings)
    monkeypatch.setattr(clickhouse_sink, "run", lambda settings: ran.append("sink"))
    monkeypatch.setattr(held, "skip_held", lambda *args: ran.append(args))
    cli.main(["sink"])
    cli.main(["sink", "skip-held", "qoima.clean.demo.population.persons", "0", "41"])
    assert ran == ["sink", (unit_settings.kafka_bootstrap, "qoima.clean.demo.population.persons", 0, 41)]
    assert "sink moved past offset 41" in capsys.readouterr().out


def test_python_dash_m_qoima():
    """How the stack starts its processes (`python -m qoima processor`, infra/supervise.py)."""
    bare = subprocess.run([sys.executable, "-m", "qoima"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert bare.returncode == 2 and "Usage: qoima" in bare.stdout
    bad = subprocess.run([sys.executable, "-m", "qoima", "sink", "skip-held", "t", "x", "1"],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert bad.returncode == 2 and bad.stdout == "" and "Traceback" not in bad.stderr
    assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("qoima sink skip-held: error: ")


def test_an_unreachable_component_is_named_with_the_fix_not_a_traceback():
    import psycopg
    import requests
    from clickhouse_connect.driver.exceptions import OperationalError
    from confluent_kafka import KafkaException

    assert cli._unreachable(psycopg.OperationalError("connection refused")).startswith(
        "qoima: the PostgreSQL database did not answer (connection refused); is it running")
    assert cli._unreachable(OperationalError("refused")).startswith("qoima: ClickHouse did not answer (refused)")
    assert "qoima up" in cli._unreachable(KafkaException("transport"))
    assert cli._unreachable(requests.ConnectionError("no")).startswith("qoima: a service of the stack")
    assert cli._unreachable(ValueError("a bug")) is None
    # An object or grant capture needs, missing at the source: a message pointing at the check.
    missing = cli._unreachable(psycopg.errors.UndefinedTable('relation "public.qoima_signal" does not exist'))
    assert missing.startswith("qoima: the PostgreSQL source refused a statement (relation") and "provider check" in missing
    assert cli._unreachable(psycopg.errors.SyntaxError("a bug of ours")) is None   # keeps its traceback   # a bug keeps its traceback


def test_commands_against_a_stack_that_is_not_running_exit_1_with_a_message(tmp_path):
    import subprocess

    env = {**os.environ, "QOIMA_HOME": str(tmp_path), "QOIMA_PORT_SHIFT": "-5000"}   # nothing listens there
    (tmp_path / "secrets").mkdir()
    for user in ("qoima_writer", "analyst"):   # as `qoima up` left them; the stack is down since
        (tmp_path / "secrets" / f"clickhouse-{user}-password").write_text("x\n")
    for args in (["dq", "report"], ["incidents", "list"]):
        result = subprocess.run([sys.executable, "-m", "qoima", *args], env=env, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 1, result.stderr
        assert "qoima: ClickHouse did not answer" in result.stderr and "qoima up" in result.stderr
        assert "Traceback" not in result.stderr


def test_up_on_a_disk_short_of_room_starts_nothing_and_says_how_to_fix_it(monkeypatch, capsys, tmp_path):
    home = tmp_path / "home"   # not made yet: the disk it will be on is the one measured
    monkeypatch.setenv("QOIMA_HOME", str(home))
    monkeypatch.setenv("QOIMA_MIN_FREE_GB", str(1 << 20))   # a petabyte: more than any disk here
    message = _fails(["up", "--no-demo"], capsys, 1)
    assert message.startswith("qoima up failed: only ") and f"GB is free on the disk of QOIMA_HOME ({home})" in message
    assert "QOIMA_MIN_FREE_GB" in message and "qoima down --wipe" in message
    assert not home.exists(), "nothing was made, so nothing was started"


def test_an_existing_stack_short_of_room_starts_with_a_warning(tmp_path):
    """Its data is already on that disk: refusing would keep it down after the operator freed
    what they could. A new stack on the same disk is refused (the test above)."""
    from infra.disk import ensure_room
    from model.settings import Settings

    settings = Settings.from_env({"QOIMA_HOME": str(tmp_path), "QOIMA_MIN_FREE_GB": str(1 << 20)})
    settings.data_dir.mkdir(parents=True)
    said: list[str] = []
    ensure_room(settings, said.append)
    assert len(said) == 1 and said[0].startswith("disk: warning: only ") and "Starting the existing stack" in said[0]
