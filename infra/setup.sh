#!/usr/bin/env bash
# Installs everything the local stack and the tests need, on a fresh Debian 12 machine.
# Idempotent and quick when nothing changed: each step checks before it installs.
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/versions.env

step() { printf '\n==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

packages=()
[ -x "/usr/lib/postgresql/${POSTGRES_MAJOR}/bin/postgres" ] || packages+=("postgresql-${POSTGRES_MAJOR}")
[ -x /usr/bin/prometheus ] || packages+=("${PROMETHEUS_DEBIAN_PACKAGE}")
[ -x /usr/bin/prometheus-alertmanager ] || packages+=(prometheus-alertmanager)
# The second source type's demo (docs/mariadb.md); Debian 12 ships MariaDB 10.11.
[ -x /usr/sbin/mariadbd ] || packages+=(mariadb-server)
command -v java >/dev/null || packages+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || packages+=(maven)
python3 -c 'import venv, ensurepip' 2>/dev/null || packages+=(python3-venv)
# The PD236 testing act's font (Cyrillic and Kazakh letters): governance/pd236/test_act.py.
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || packages+=(fonts-dejavu-core)
if [ ${#packages[@]} -gt 0 ]; then
  step "Debian packages: ${packages[*]}"
  # Keep the packages' own services from starting: the stack runs its own instances.
  policy_created=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod +x /usr/sbin/policy-rc.d
    policy_created=1
  fi
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}"
  [ "$policy_created" -eq 0 ] || as_root rm -f /usr/sbin/policy-rc.d
fi

jars=infra/jvm/target/kafka-libs
if [ ! -d "$jars" ] || [ infra/jvm/pom.xml -nt "$jars" ]; then
  step "JVM jars from Maven Central (Kafka ${KAFKA_VERSION}, Debezium ${DEBEZIUM_VERSION})"
  rm -rf infra/jvm/target
  mvn -q -B -f infra/jvm/pom.xml package
  touch "$jars"
fi

stamp=.venv/.qoima-installed
if [ ! -x .venv/bin/python ] || [ pyproject.toml -nt "$stamp" ]; then
  step "Python virtual environment (.venv) with Qoima and its pinned dependencies"
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test]'
  touch "$stamp"
fi
step "setup complete"
