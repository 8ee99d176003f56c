"""The key ring (streams/keys.py): HKDF, pseudonyms, where the master secret comes from."""
from __future__ import annotations

import os
import re
import stat

import pytest

from streams.keys import KeyRing, MasterKeyError, create_master_key_file, hkdf_sha256, pseudonym

SECRET = bytes(range(100, 132))          # 32 bytes
SECRET_HEX = SECRET.hex()
OTHER_SECRET = bytes(range(200, 232))


# --- HKDF (RFC 5869) ------------------------------------------------------------------------


def test_hkdf_rfc5869_test_case_1() -> None:
    okm = hkdf_sha256(
        ikm=bytes([0x0B] * 22),
        salt=bytes.fromhex("000102030405060708090a0b0c"),
        info=bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"),
        length=42,
    )
    assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                         "34007208d5b887185865")


def test_hkdf_rfc5869_test_case_3_empty_salt_and_info() -> None:
    # RFC 5869 A.3: an empty salt means HashLen zero bytes.
    okm = hkdf_sha256(ikm=bytes([0x0B] * 22), salt=b"", info=b"", length=42)
    assert okm.hex() == ("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
                         "9d201395faa4b61a96c8")


def test_hkdf_default_length_is_32() -> None:
    assert len(hkdf_sha256(b"k" * 32, b"salt", b"info")) == 32


# --- pseudonyms -----------------------------------------------------------------------------


def test_pseudonym_shape_and_determinism() -> None:
    value = pseudonym(b"k" * 32, b"850101300124")
    assert re.fullmatch(r"[a-z2-7]{52}", value)
    assert value == pseudonym(b"k" * 32, b"850101300124")


def test_pseudonym_differs_by_key_and_by_input() -> None:
    base = pseudonym(b"k" * 32, b"850101300124")
    assert pseudonym(b"j" * 32, b"850101300124") != base
    assert pseudonym(b"k" * 32, b"850101300125") != base


def test_pseudonym_truncation() -> None:
    full = pseudonym(b"k" * 32, b"x")
    assert pseudonym(b"k" * 32, b"x", 26) == full[:26]


# --- KeyRing --------------------------------------------------------------------------------


def test_short_secret_refused_without_quoting_it() -> None:
    short = b"\x01short-secret-value\x02"
    with pytest.raises(MasterKeyError) as info:
        KeyRing("k1", short)
    assert "at least 32" in str(info.value)
    assert "short-secret-value" not in str(info.value)
    assert short.hex() not in str(info.value)


def test_exactly_32_bytes_accepted() -> None:
    assert KeyRing("k1", SECRET).key_id == "k1"


def test_subkeys_differ_per_kind_and_per_key_id() -> None:
    ring = KeyRing("k1", SECRET)
    kinds = ["iin", "bin", "phone", "name", "email", "invalid/iin", "quarantine-digest"]
    subkeys = [ring.subkey(kind) for kind in kinds]
    assert all(len(k) == 32 for k in subkeys)
    assert len(set(subkeys)) == len(kinds)
    assert ring.subkey("iin") == KeyRing("k1", SECRET).subkey("iin")       # deterministic
    assert ring.subkey("iin") != KeyRing("k2", SECRET).subkey("iin")       # per key id
    assert ring.subkey("iin") != KeyRing("k1", OTHER_SECRET).subkey("iin")  # per secret
    assert SECRET not in ring.subkey("iin")


def test_repr_and_str_do_not_contain_the_secret() -> None:
    ring = KeyRing("k1", SECRET)
    for text in (repr(ring), str(ring), f"{ring}"):
        assert "k1" in text
        assert SECRET_HEX not in text
        assert repr(SECRET) not in text
        assert "_master" not in text


# --- KeyRing.load ---------------------------------------------------------------------------


@pytest.fixture()
def key_files(tmp_path):
    default = tmp_path / "default.key"
    default.write_text(OTHER_SECRET.hex() + "\n")
    chosen = tmp_path / "chosen.key"
    chosen.write_text(bytes(range(32)).hex() + "\n")
    return default, chosen


def test_load_env_hex_wins_over_files(key_files) -> None:
    default, chosen = key_files
    ring = KeyRing.load("k1", {"QOIMA_MASTER_KEY": SECRET_HEX, "QOIMA_MASTER_KEY_FILE": str(chosen)}, default)
    assert ring.subkey("iin") == KeyRing("k1", SECRET).subkey("iin")


def test_load_key_file_wins_over_default(key_files) -> None:
    default, chosen = key_files
    ring = KeyRing.load("k1", {"QOIMA_MASTER_KEY_FILE": str(chosen)}, default)
    assert ring.subkey("iin") == KeyRing("k1", bytes(range(32))).subkey("iin")


def test_load_default_file_last(key_files) -> None:
    default, _ = key_files
    ring = KeyRing.load("k7", {}, default)
    assert ring.key_id == "k7"
    assert ring.subkey("iin") == KeyRing("k7", OTHER_SECRET).subkey("iin")


def test_load_empty_env_falls_through_to_file(key_files) -> None:
    default, chosen = key_files
    ring = KeyRing.load("k1", {"QOIMA_MASTER_KEY": "", "QOIMA_MASTER_KEY_FILE": ""}, default)
    assert ring.subkey("iin") == KeyRing("k1", OTHER_SECRET).subkey("iin")


def test_load_missing_everything_says_where_it_looked(tmp_path) -> None:
    missing = tmp_path / "nope" / "master.key"
    with pytest.raises(MasterKeyError) as info:
        KeyRing.load("k1", {}, missing)
    message = str(info.value)
    assert "QOIMA_MASTER_KEY" in message and "QOIMA_MASTER_KEY_FILE" in message
    assert str(missing) in message


def test_load_invalid_env_hex_does_not_quote_it(tmp_path) -> None:
    not_hex = "correct-horse-battery-staple-" * 3
    with pytest.raises(MasterKeyError) as info:
        KeyRing.load("k1", {"QOIMA_MASTER_KEY": not_hex}, tmp_path / "x")
    assert "hex" in str(info.value)
    assert "correct-horse" not in str(info.value)


def test_load_short_env_secret_does_not_quote_it(tmp_path) -> None:
    short_hex = "ab" * 16 + "cd"  # 17 bytes
    with pytest.raises(MasterKeyError) as info:
        KeyRing.load("k1", {"QOIMA_MASTER_KEY": short_hex}, tmp_path / "x")
    assert "17 bytes" in str(info.value)
    assert short_hex not in str(info.value)


def test_load_invalid_file_does_not_quote_it(tmp_path) -> None:
    path = tmp_path / "master.key"
    path.write_text("correct-horse-battery-staple-not-hex\n")
    with pytest.raises(MasterKeyError) as info:
        KeyRing.load("k1", {"QOIMA_MASTER_KEY_FILE": str(path)}, tmp_path / "other")
    assert str(path) in str(info.value)
    assert "correct-horse" not in str(info.value)


def test_load_short_file_secret_refused(tmp_path) -> None:
    path = tmp_path / "master.key"
    path.write_text("00" * 31)
    with pytest.raises(MasterKeyError) as info:
        KeyRing.load("k1", {}, path)
    assert "31 bytes" in str(info.value)


# --- create_master_key_file -----------------------------------------------------------------


def test_create_master_key_file_mode_content_and_loadable(tmp_path) -> None:
    path = tmp_path / "secrets" / "master.key"
    assert create_master_key_file(path) is True
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    content = path.read_text()
    assert re.fullmatch(r"[0-9a-f]{64}\n", content)
    ring = KeyRing.load("k1", {}, path)
    assert ring.subkey("iin") == KeyRing("k1", bytes.fromhex(content.strip())).subkey("iin")


def test_create_master_key_file_does_not_overwrite(tmp_path) -> None:
    path = tmp_path / "master.key"
    path.write_text(SECRET_HEX + "\n")
    assert create_master_key_file(path) is False
    assert path.read_text() == SECRET_HEX + "\n"


def test_create_master_key_file_is_random(tmp_path) -> None:
    a, b = tmp_path / "a.key", tmp_path / "b.key"
    create_master_key_file(a)
    create_master_key_file(b)
    assert a.read_text() != b.read_text()


# --- key schedule (rotation) ----------------------------------------------------------------

def _key_file(tmp_path, name: str) -> str:
    path = tmp_path / f"{name}.key"
    path.write_text(("%02x" % (len(name) + 17)) * 32)
    return str(path)


def test_schedule_picks_the_key_by_source_commit_time(tmp_path) -> None:
    from streams.keys import load_schedule

    schedule_file = tmp_path / "keys.yaml"
    schedule_file.write_text(
        "keys:\n"
        f"  - {{id: k2, file: {_key_file(tmp_path, 'second')}, active_from: '2026-12-01T00:00:00Z'}}\n"
        f"  - {{id: k1, file: {_key_file(tmp_path, 'first')}}}\n")
    schedule = load_schedule("ignored", {"QOIMA_KEYRING_FILE": str(schedule_file)}, tmp_path / "none")
    assert schedule.key_ids == ["k1", "k2"]
    switch = 1_796_083_200_000  # 2026-12-01T00:00:00Z
    assert schedule.for_time(switch - 1).key_id == "k1"
    assert schedule.for_time(switch).key_id == "k2"
    assert schedule.for_time(0).key_id == "k1"
    assert schedule.for_time(switch).subkey("iin") != schedule.for_time(0).subkey("iin")


def test_schedule_errors_name_the_problem(tmp_path) -> None:
    from streams.keys import MasterKeyError, load_schedule

    bad = tmp_path / "keys.yaml"
    bad.write_text(f"keys:\n  - {{id: k1, file: {_key_file(tmp_path, 'a')}, active_from: 'soon'}}\n")
    with pytest.raises(MasterKeyError, match="active_from must be ISO 8601"):
        load_schedule("k1", {"QOIMA_KEYRING_FILE": str(bad)}, tmp_path / "none")
    twice = tmp_path / "twice.yaml"
    twice.write_text(f"keys:\n  - {{id: k1, file: {_key_file(tmp_path, 'a')}}}\n"
                     f"  - {{id: k1, file: {_key_file(tmp_path, 'b')}}}\n")
    with pytest.raises(MasterKeyError, match="unique"):
        load_schedule("k1", {"QOIMA_KEYRING_FILE": str(twice)}, tmp_path / "none")
    with pytest.raises(MasterKeyError, match="does not exist"):
        load_schedule("k1", {"QOIMA_KEYRING_FILE": str(tmp_path / "missing.yaml")}, tmp_path / "none")


def test_without_a_schedule_the_master_key_is_the_only_key(tmp_path) -> None:
    from streams.keys import load_schedule

    schedule = load_schedule("k9", {"QOIMA_MASTER_KEY": "ab" * 32}, tmp_path / "none")
    assert schedule.key_ids == ["k9"] and schedule.for_time(10**13).key_id == "k9"


def test_base32_spelling_is_rfc4648_lower_case_without_padding() -> None:
    # The fast spelling must be the standard library's, digit for digit (golden vectors pin the rest).
    import base64
    import os

    from streams.keys import base32

    for size in (16, 32):
        for digest in [bytes(size), b"\xff" * size, *(os.urandom(size) for _ in range(500))]:
            assert base32(digest) == base64.b32encode(digest).decode().rstrip("=").lower()
