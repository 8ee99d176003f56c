"""The key ring behind pseudonyms: a master secret held outside the warehouse, per-kind subkeys.

R394 §18 asks for a one-way function without the possibility of reverse recovery. An IIN has
fewer than 10^9 candidates, so an unkeyed hash is reversed by enumeration; a keyed HMAC is
not, as long as the master secret stays out of the warehouse, the repository and the logs.
Subkeys are derived per identifier kind with HKDF (RFC 5869) so that an IIN and a phone that
happen to share digits never share a pseudonym.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

_MIN_SECRET_BYTES = 32


class MasterKeyError(RuntimeError):
    """The master secret is missing or too weak; the message says where Qoima looked."""


def pseudonym(key: bytes, data: bytes, length: int = 52) -> str:
    """HMAC-SHA256 in lowercase base32: 52 characters carry all 256 bits.

    Base32, not hex: hex pseudonyms contain long runs of decimal digits that a scanner for
    leaked IINs or phone numbers would flag; base32 has only 6 digit symbols in 32.
    """
    digest = hmac.new(key, data, hashlib.sha256).digest()
    return base64.b32encode(digest).decode().rstrip("=").lower()[:length]


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    prk = hmac.new(salt or b"\0" * 32, ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


@dataclass(frozen=True)
class KeyRing:
    key_id: str
    _master: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self._master) < _MIN_SECRET_BYTES:
            raise MasterKeyError(f"the master secret is {len(self._master)} bytes; it must be at least {_MIN_SECRET_BYTES}")

    def subkey(self, kind: str) -> bytes:
        return hkdf_sha256(self._master, salt=b"qoima-pseudonyms", info=f"{self.key_id}/{kind}".encode())

    @classmethod
    def load(cls, key_id: str, environ: dict[str, str], default_file: Path) -> "KeyRing":
        """QOIMA_MASTER_KEY (hex) wins, then QOIMA_MASTER_KEY_FILE, then the stack's own file."""
        if environ.get("QOIMA_MASTER_KEY"):
            try:
                return cls(key_id, bytes.fromhex(environ["QOIMA_MASTER_KEY"]))
            except ValueError:
                raise MasterKeyError("QOIMA_MASTER_KEY must be hex (64 or more hex digits)") from None
        path = Path(environ.get("QOIMA_MASTER_KEY_FILE") or default_file)
        if not path.is_file():
            raise MasterKeyError(f"no master secret: set QOIMA_MASTER_KEY or QOIMA_MASTER_KEY_FILE, or run `qoima up` to create {path}")
        try:
            return cls(key_id, bytes.fromhex(path.read_text().strip()))
        except ValueError:
            raise MasterKeyError(f"{path} must hold the master secret as hex") from None


def create_master_key_file(path: Path) -> bool:
    """Create a fresh random master secret unless one exists; True when created."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    return True
