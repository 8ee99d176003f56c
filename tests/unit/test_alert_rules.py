"""The Prometheus alert rules (monitoring/alerts.yml) and their promtool unit tests
(monitoring/alerts_test.yml): the rules load, every case passes, and every rule is tested both
firing and not firing."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
MONITORING = REPO_ROOT / "monitoring"
ALERTS = MONITORING / "alerts.yml"
ALERTS_TEST = MONITORING / "alerts_test.yml"


def _promtool() -> str:
    found = shutil.which("promtool") or ("/usr/bin/promtool" if Path("/usr/bin/promtool").is_file() else None)
    assert found, ("promtool not found (neither on PATH nor at /usr/bin/promtool): `make setup` installs "
                   "Debian's prometheus package, which provides it")
    return found


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_promtool(), *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit status {result.returncode}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"


def _alert_names() -> list[str]:
    rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule]


def _cases() -> list[dict]:
    tests = yaml.safe_load(ALERTS_TEST.read_text(encoding="utf-8"))
    return [case for group in tests.get("tests") or () for case in group.get("alert_rule_test") or ()]


def test_alert_rules_are_valid() -> None:
    result = _run("check", "rules", str(ALERTS))
    assert result.returncode == 0, f"promtool check rules {ALERTS} failed:\n{_output(result)}"


def test_alert_rule_unit_tests_pass() -> None:
    result = _run("test", "rules", str(ALERTS_TEST))
    assert result.returncode == 0, f"promtool test rules {ALERTS_TEST} failed:\n{_output(result)}"


def test_the_unit_tests_load_the_alert_rules() -> None:
    tests = yaml.safe_load(ALERTS_TEST.read_text(encoding="utf-8"))
    assert [(ALERTS_TEST.parent / path).resolve() for path in tests["rule_files"]] == [ALERTS.resolve()]


def test_every_alert_has_a_firing_case() -> None:
    names = _alert_names()
    assert len(names) == len(set(names)), f"duplicate alert names in {ALERTS.name}: {sorted(names)}"
    firing = {case["alertname"] for case in _cases() if case.get("exp_alerts")}
    missing = [name for name in names if name not in firing]
    assert not missing, f"alerts with no case in {ALERTS_TEST.name} that expects them to fire: {missing}"


def test_every_alert_has_a_quiet_case() -> None:
    quiet = {case["alertname"] for case in _cases() if not case.get("exp_alerts")}
    missing = [name for name in _alert_names() if name not in quiet]
    assert not missing, f"alerts with no case in {ALERTS_TEST.name} where they do not fire: {missing}"


def test_the_cases_name_only_known_alerts() -> None:
    unknown = sorted({case["alertname"] for case in _cases()} - set(_alert_names()))
    assert not unknown, f"cases in {ALERTS_TEST.name} for alerts that {ALERTS.name} does not define: {unknown}"
