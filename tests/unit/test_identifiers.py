"""IIN/BIN check digits (model/identifiers.py) against an independent reading of the rule.

The rule: the sum of digits 1-11 times weights 1..11, mod 11; if that is 10, a second pass
with weights 3,4,5,6,7,8,9,10,11,1,2, mod 11; a second 10 means no such number is issued.
"""
from __future__ import annotations

import pytest

from model.identifiers import (check_digit, has_valid_check_digit, is_valid_bin, is_valid_email,
                                 is_valid_id_card, is_valid_iin, is_valid_name, is_valid_passport,
                                 is_valid_phone)

W1 = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
W2 = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)


def weighted(prefix: str, weights: tuple[int, ...]) -> int:
    return sum(int(d) * w for d, w in zip(prefix, weights, strict=True)) % 11


def reference_check_digit(prefix: str) -> int | None:
    first = weighted(prefix, W1)
    if first != 10:
        return first
    second = weighted(prefix, W2)
    return None if second == 10 else second


# --- hand-verified examples -----------------------------------------------------------------

def test_first_pass_example_worked_by_hand() -> None:
    # 8*1 + 5*2 + 0*3 + 1*4 + 0*5 + 1*6 + 3*7 + 0*8 + 0*9 + 1*10 + 2*11 = 81; 81 mod 11 = 4
    prefix = "85010130012"
    assert weighted(prefix, W1) == 81 % 11 == 4
    assert check_digit(prefix) == 4
    assert is_valid_iin("850101300124")


def test_second_pass_used_when_first_gives_ten() -> None:
    # W1: 8+10+0+4+0+6+21+0+0+60+0 = 109 = 9*11 + 10  -> 10, so the second weights apply
    # W2: 24+20+0+6+0+8+27+0+0+6+0 = 91 = 8*11 + 3   -> 3
    prefix = "85010130060"
    assert weighted(prefix, W1) == 10
    assert weighted(prefix, W2) == 3
    assert check_digit(prefix) == 3
    assert is_valid_iin("850101300603")
    # The first-pass value is not a check digit at all here (10 is not a digit), and
    # any other last digit is refused.
    for wrong in "012456789":
        assert not is_valid_iin("85010130060" + wrong)


def test_bin_second_pass() -> None:
    prefix = "07124050040"  # 5th digit 4: a BIN
    assert weighted(prefix, W1) == 10
    assert check_digit(prefix) == weighted(prefix, W2) == 1
    assert is_valid_bin("071240500401")
    assert not is_valid_iin("071240500401")


def test_ten_twice_means_never_issued() -> None:
    # W1: 8+10+0+4+0+6+21+0+0+60+99 = 208 = 18*11 + 10
    # W2: 24+20+0+6+0+8+27+0+0+6+18 = 109 = 9*11 + 10
    prefix = "85010130069"
    assert weighted(prefix, W1) == 10 and weighted(prefix, W2) == 10
    assert check_digit(prefix) is None
    # No last digit makes such a number valid.
    for last in "0123456789":
        assert not has_valid_check_digit(prefix + last)
        assert not is_valid_iin(prefix + last)


@pytest.mark.parametrize("prefix", [
    "85010130012", "90051540123", "07123150001", "98122640000", "00000000000",
    "99999999999", "12345678901", "07124050012", "19030550000", "85010130060",
    "85010130069", "07124050120",
])
def test_check_digit_matches_reference(prefix: str) -> None:
    assert check_digit(prefix) == reference_check_digit(prefix)


def test_check_digit_matches_reference_exhaustively_over_a_range() -> None:
    seen_second_pass = seen_never_issued = 0
    for n in range(85010130000, 85010132000):
        prefix = str(n)
        expected = reference_check_digit(prefix)
        assert check_digit(prefix) == expected, prefix
        if weighted(prefix, W1) == 10:
            seen_second_pass += 1
            seen_never_issued += expected is None
        if expected is not None:
            assert has_valid_check_digit(prefix + str(expected))
    assert seen_second_pass > 0 and seen_never_issued > 0


# --- rejection ------------------------------------------------------------------------------

def test_wrong_check_digit_rejected() -> None:
    assert is_valid_iin("850101300124")
    for wrong in "012356789":
        assert not has_valid_check_digit("85010130012" + wrong)
        assert not is_valid_iin("85010130012" + wrong)


@pytest.mark.parametrize("value", [
    "", "85010130012", "8501013001240", "85010130012a", "8501013001 4", "850101-300124",
    " 850101300124", "850101300124 ",
])
def test_non_digits_and_wrong_length_rejected(value: str) -> None:
    assert not has_valid_check_digit(value)
    assert not is_valid_iin(value)
    assert not is_valid_bin(value)


FULL_WIDTH_IIN = "".join(chr(ord(c) + 0xFEE0) for c in "850101300124")  # '８５０１...'


def test_full_width_digits_are_not_an_iin_or_bin() -> None:
    # Today this holds only because the 5th-digit test compares against ASCII "0123"/"456".
    assert not is_valid_iin(FULL_WIDTH_IIN)
    assert not is_valid_bin(FULL_WIDTH_IIN)


def test_trailing_newline_is_not_twelve_digits() -> None:
    assert not has_valid_check_digit("850101300124\n")
    assert not is_valid_iin("850101300124\n")


def test_non_ascii_digits_are_not_twelve_digits() -> None:
    assert not has_valid_check_digit(FULL_WIDTH_IIN)


# --- IIN vs BIN: the 5th digit --------------------------------------------------------------

@pytest.mark.parametrize("fifth", "0123456789")
def test_fifth_digit_separates_iin_and_bin(fifth: str) -> None:
    prefix = "8501" + fifth + "130012"
    digit = reference_check_digit(prefix)
    if digit is None:  # pick a neighbouring serial that is issued
        prefix = prefix[:-1] + "3"
        digit = reference_check_digit(prefix)
    value = prefix + str(digit)
    assert has_valid_check_digit(value)
    assert is_valid_iin(value) is (fifth in "0123")
    assert is_valid_bin(value) is (fifth in "456")
    if fifth in "789":
        assert not is_valid_iin(value) and not is_valid_bin(value)


# --- validators of the other kinds: canonical forms only -------------------------------------

@pytest.mark.parametrize(("value", "valid"), [
    ("+77012345678", True), ("+77271234567", True),
    ("77012345678", False),      # no '+'
    ("+74951234567", False),     # Russian: no 7 after the country code
    ("+87012345678", False), ("+7701234567", False), ("+770123456789", False),
    ("+7 701 234 56 78", False),  # not canonical
])
def test_phone_validator(value: str, valid: bool) -> None:
    assert is_valid_phone(value) is valid


@pytest.mark.parametrize(("value", "valid"), [
    ("N12345678", True), ("N00000000", True),
    ("n12345678", False), ("Н12345678", False),  # lower case, Cyrillic: not canonical
    ("N1234567", False), ("N123456789", False), ("12345678", False), ("N 12345678", False),
    ("N" + "".join(chr(ord(c) + 0xFEE0) for c in "12345678"), False),
])
def test_passport_validator(value: str, valid: bool) -> None:
    assert is_valid_passport(value) is valid


@pytest.mark.parametrize(("value", "valid"), [
    ("012345678", True), ("999999999", True),
    ("01234567", False), ("0123456789", False), ("012 345 678", False), ("01234567a", False),
    ("".join(chr(ord(c) + 0xFEE0) for c in "012345678"), False),
])
def test_id_card_validator(value: str, valid: bool) -> None:
    assert is_valid_id_card(value) is valid


@pytest.mark.parametrize(("value", "valid"), [
    ("aliya.k@mail.kz", True), ("a@b.kz", True),
    ("a@b", False), ("a b@mail.kz", False), ("a@@mail.kz", False), ("@mail.kz", False), ("", False),
])
def test_email_validator(value: str, valid: bool) -> None:
    assert is_valid_email(value) is valid


@pytest.mark.parametrize(("value", "valid"), [
    ("alibek", True), ("ә", True), ("o'neil", True), ("", False), ("123", False), (" - ", False),
])
def test_name_validator(value: str, valid: bool) -> None:
    assert is_valid_name(value) is valid
