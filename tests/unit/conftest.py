"""Shared fixtures for the unit tests: no servers, no network, only temporary directories.

The demo regulation is loaded the way `qoima` loads it (Settings.from_env + regulation_env),
with QOIMA_HOME in a temporary directory so the secrets directory is a throwaway one.
Fixture names avoid `settings`, which tests/conftest.py uses for the real stack.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from model.regulation import Regulation, load_regulation
from model.settings import Settings
from schemas.avro_codec import AvroCodec, codec_for
from streams.keys import KeyRing
from streams.router import Router

# Variables that would leak into Settings.regulation_env() from the caller's shell.
_LEAKY_ENV = ("QOIMA_LOCAL_PG_HOST", "QOIMA_LOCAL_PG_PORT", "QOIMA_SECRETS_DIR",
              "QOIMA_MASTER_KEY", "QOIMA_MASTER_KEY_FILE")

FIXED_KEY = bytes(range(32))               # a fixed 32-byte master secret
DEMO_PASSWORD = "demo-pw-Zq7#unit-test-only"  # the value written into the temp secret file


@pytest.fixture(scope="session", autouse=True)
def _hermetic_environment():
    """Keep a developer's exported QOIMA_* variables out of regulation_env()."""
    saved = {name: os.environ.pop(name) for name in _LEAKY_ENV if name in os.environ}
    yield
    os.environ.update(saved)


@pytest.fixture(scope="session")
def unit_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("qoima-home")


@pytest.fixture(scope="session")
def unit_settings(unit_home) -> Settings:
    return Settings.from_env({"QOIMA_HOME": str(unit_home)})


@pytest.fixture(scope="session")
def demo_password() -> str:
    return DEMO_PASSWORD


@pytest.fixture(scope="session")
def demo_password_file(unit_settings) -> Path:
    unit_settings.secrets_dir.mkdir(parents=True, exist_ok=True)
    path = unit_settings.secrets_dir / "demo-source-password"
    path.write_text(DEMO_PASSWORD + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.fixture(scope="session")
def regulation_env(unit_settings) -> dict[str, str]:
    return unit_settings.regulation_env()


@pytest.fixture(scope="session")
def demo(unit_settings, regulation_env, demo_password_file) -> Regulation:
    return load_regulation(unit_settings.regulations_dir / "demo.yaml", regulation_env)


@pytest.fixture(scope="session")
def ring() -> KeyRing:
    return KeyRing("k1", FIXED_KEY)


@pytest.fixture(scope="session")
def codec(demo) -> AvroCodec:
    return codec_for([demo])


@pytest.fixture(scope="session")
def router(demo, ring, codec) -> Router:
    return Router([demo], ring, codec)
