"""Kazakh personal identifiers: IIN (individuals) and BIN (legal entities).

Both are 12 digits whose last digit is a check digit: the sum of digits 1-11 times
weights 1..11, mod 11; if that is 10, a second pass with weights 3..11,1,2; a second 10
means the number is never issued. The 5th digit tells them apart: an IIN starts with the
birth date YYMMDD, so its 5th digit is the day's first digit (0-3); a BIN's 5th digit is the
entity type (4-6). An IIN's 7th digit encodes century and sex.
"""
from __future__ import annotations

import re

_W1 = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
_W2 = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)
_DIGITS12 = re.compile(r"[0-9]{12}")  # ASCII only: \d also matches other scripts' digits


def check_digit(first11: str) -> int | None:
    """The check digit for 11 leading digits, or None when no valid number has them."""
    digits = [int(c) for c in first11]
    control = sum(d * w for d, w in zip(digits, _W1)) % 11
    if control == 10:
        control = sum(d * w for d, w in zip(digits, _W2)) % 11
    return None if control == 10 else control


def has_valid_check_digit(value: str) -> bool:
    if not _DIGITS12.fullmatch(value):
        return False
    return check_digit(value[:11]) == int(value[11])


def is_valid_iin(value: str) -> bool:
    return has_valid_check_digit(value) and value[4] in "0123"


def is_valid_bin(value: str) -> bool:
    return has_valid_check_digit(value) and value[4] in "456"
