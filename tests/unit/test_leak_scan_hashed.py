"""The sink's check reads a hashed column's values by their shape first (model/leak_scan.py
`structural_kinds_in_hashed`): pseudonyms are passed over, anything else is scanned in full."""
from __future__ import annotations

from model import leak_scan
from model.leak_scan import structural_kinds_in, structural_kinds_in_hashed
from streams.keys import pseudonym

VALID_IIN = "850101300124"   # a valid check digit (tests/unit/marker_fakes.py uses it too)


def test_pseudonyms_of_both_shapes_are_passed_over(monkeypatch) -> None:
    values = [pseudonym(bytes(32), b"850101300124"), "invalid:" + pseudonym(bytes(32), b"x", 26), None, "other"]
    assert len(values[0]) == 52
    scanned = []
    real = leak_scan.structural_kinds
    monkeypatch.setattr(leak_scan, "structural_kinds", lambda text: scanned.append(text) or real(text))
    assert structural_kinds_in_hashed(values) == set()
    assert scanned == ["other"]   # the pseudonyms never reach the scan


def test_a_clear_identifier_in_a_hashed_column_is_still_found() -> None:
    values = [pseudonym(bytes(32), b"a"), VALID_IIN, f"note {VALID_IIN}", ["inside", VALID_IIN]]
    assert structural_kinds_in_hashed(values) == {"iin"} == structural_kinds_in(values)


def test_a_near_pseudonym_is_scanned() -> None:
    # 52 characters but not base32 (digits 0, 1, 8, 9): not a pseudonym's shape, so read in full.
    near = VALID_IIN + "a" * 40
    assert len(near) == 52 and structural_kinds_in_hashed([near]) == {"iin"}
