"""The key ring behind pseudonyms: a master secret held outside the warehouse, per-kind subkeys.

R394 §18 asks for a one-way function without the possibility of reverse recovery. An IIN has
fewer than 10^9 candidates, so an unkeyed hash is reversed by enumeration; a keyed HMAC is
not, as long as the master secret stays out of the warehouse, the repository and the logs.
Subkeys are derived per identifier kind with HKDF (RFC 5869) so that an IIN and a phone that
happen to share digits never share a pseudonym.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

_MIN_SECRET_BYTES = 32


class MasterKeyError(RuntimeError):
    """The master secret is missing or too weak; the message says where Qoima looked."""


# RFC 4648's base32 alphabet in lower case, two symbols (10 bits) at a time: the standard
# library's b32encode is pure Python and cost more than the HMAC it spells.
_B32 = "abcdefghijklmnopqrstuvwxyz234567"
_B32_PAIRS = tuple(a + b for a in _B32 for b in _B32)


def base32(data: bytes) -> str:
    """base64.b32encode(data).decode().rstrip("=").lower(), for 16- and 32-byte digests.

    Qoima's digests are spelled in base32 because it neither forms words a scan for known
    names would match (no '-' or '_' to end a word; letters run into digits) nor long digit
    runs a scan for IINs or phones would match (its only digits are 2-7)."""
    pad = -len(data) * 8 % 10                        # zero bits up to a whole pair of symbols
    bits = int.from_bytes(data, "big") << pad
    return "".join([_B32_PAIRS[(bits >> shift) & 1023] for shift in range(len(data) * 8 + pad - 10, -10, -10)])


@lru_cache(maxsize=1 << 16)
def pseudonym(key: bytes, data: bytes, length: int = 52) -> str:
    """HMAC-SHA256 in lowercase base32: 52 characters carry all 256 bits.

    Base32, not hex: hex pseudonyms contain long runs of decimal digits that a scanner for
    leaked IINs or phone numbers would flag; base32 has only 6 digit symbols in 32. Cached:
    one identifier recurs across rows and tables (a person's IIN in each payment), and the
    cache lives only in the processor's memory, beside the raw events it reads anyway.
    """
    return base32(hmac.digest(key, data, hashlib.sha256))[:length]


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


@dataclass(frozen=True)
class KeySchedule:
    """Keys with the moment each takes effect, for rotation.

    The key for a change is the newest one whose `active_from` is not after the change's
    source commit time, so a replayed event gets the pseudonym it got the first time.
    """

    entries: tuple[tuple[int, KeyRing], ...]   # (active_from in epoch ms, key), sorted

    def __post_init__(self) -> None:
        if not self.entries:
            raise MasterKeyError("the key schedule is empty; list at least one key")
        ids = [ring.key_id for _, ring in self.entries]
        if len(set(ids)) != len(ids):
            raise MasterKeyError(f"key ids must be unique in the schedule: {', '.join(ids)}")

    @classmethod
    def single(cls, ring: KeyRing) -> "KeySchedule":
        return cls(((0, ring),))

    def for_time(self, ts_ms: int) -> KeyRing:
        chosen = self.entries[0][1]
        for active_from, ring in self.entries:
            if active_from <= ts_ms:
                chosen = ring
        return chosen

    @property
    def key_ids(self) -> list[str]:
        return [ring.key_id for _, ring in self.entries]


def load_schedule(key_id: str, environ: dict[str, str], default_file: Path) -> KeySchedule:
    """QOIMA_KEYRING_FILE (a YAML list of keys by reference), else the single master key."""
    path = environ.get("QOIMA_KEYRING_FILE")
    if not path:
        return KeySchedule.single(KeyRing.load(key_id, environ, default_file))
    from datetime import datetime, timezone

    import yaml

    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise MasterKeyError(f"QOIMA_KEYRING_FILE={path} does not exist") from None
    entries = []
    for number, item in enumerate(document.get("keys") or [], 1):
        if not isinstance(item, dict) or not str(item.get("id", "")).isalnum():
            raise MasterKeyError(f"{path}: key #{number} needs an 'id' of letters and digits")
        if ("file" in item) == ("env" in item):
            raise MasterKeyError(f"{path}: key {item['id']} needs exactly one of 'file' or 'env'")
        if "file" in item:
            ring = KeyRing.load(str(item["id"]), {"QOIMA_MASTER_KEY_FILE": str(item["file"])}, Path(item["file"]))
        else:
            ring = KeyRing.load(str(item["id"]), {"QOIMA_MASTER_KEY": environ.get(str(item["env"]), "")},
                                default_file)
        when = item.get("active_from")
        try:
            if isinstance(when, datetime):  # YAML's own timestamp: naive means UTC there
                moment = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
            else:
                moment = None if when is None else datetime.fromisoformat(str(when))
                if moment is not None and moment.tzinfo is None:
                    raise ValueError("no zone")
            active_from = 0 if moment is None else int(moment.timestamp() * 1000)
        except ValueError:
            raise MasterKeyError(f"{path}: key {item['id']}: active_from must be ISO 8601 with a zone, "
                                 "e.g. 2026-12-01T00:00:00Z") from None
        entries.append((active_from, ring))
    return KeySchedule(tuple(sorted(entries, key=lambda entry: entry[0])))
