"""The local stack's secrets: the master key and random passwords, each in a 0600 file under
QOIMA_HOME/secrets, made on the first `qoima up` and kept by `qoima down --wipe`."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from infra.processes import StackError
from model.settings import Settings


def secret_file(path: Path) -> str:
    """A random secret in a 0600 file, without a trailing newline: Kafka Connect's
    DirectoryConfigProvider passes the file's bytes on verbatim, newline included."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(24))
    return path.read_text().strip()


def ensure_secrets(settings: Settings) -> None:
    from sinks.clickhouse_users import ADMIN_USER, ANALYST_USER, WRITER_USER, password_file
    from streams.keys import create_master_key_file

    settings.secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(settings.secrets_dir, 0o700)
    create_master_key_file(settings.master_key_file)
    secret_file(settings.secrets_dir / "demo-source-password")
    secret_file(settings.secrets_dir / "shop-source-password")
    secret_file(settings.secrets_dir / "mariadb-owner-password")
    for user in (ADMIN_USER, WRITER_USER, ANALYST_USER):
        secret_file(password_file(settings, user))
    # The operator's PD236 signing key (docs/pd236.md): the stand-in verifies with its public half,
    # which is also what the operator registers with the real service (PD236 §10.2).
    from governance.pd236.token import generate_key, public_half

    if not settings.pd236_private_key_file and not settings.pd236_signing_key.exists():
        generate_key(settings.pd236_signing_key, settings.pd236_verifying_key)
    elif settings.pd236_signing_key.is_file() and not settings.pd236_verifying_key.exists():
        try:
            public_half(settings.pd236_signing_key, settings.pd236_verifying_key)
        except (ValueError, TypeError) as exc:
            raise StackError(f"QOIMA_PD236_PRIVATE_KEY_FILE={settings.pd236_signing_key} is not an unencrypted PEM "
                             f"private key ({type(exc).__name__}); fix it, or unset it to use the local stack's "
                             "own key") from None
