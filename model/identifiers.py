"""Validators of Kazakh personal identifiers, applied to their canonical forms (model/normalize.py).

IIN (individuals) and BIN (legal entities) are 12 digits whose last digit is a check digit:
the sum of digits 1-11 times weights 1..11, mod 11; if that is 10, a second pass with weights
3..11,1,2; a second 10 means the number is never issued. The 5th digit tells them apart: an IIN
starts with the birth date YYMMDD, so its 5th digit is the day's first digit (0-3); a BIN's 5th
digit is the entity type (4-6). An IIN's 7th digit encodes century and sex.

The other kinds have no check digit, so their validators check the shape only:
- phone: E.164 `+7` then 10 digits starting with 7. Kazakhstan shares country code 7 with
  Russia; Kazakh numbers, mobile (70x, 747, 77x) and landline (area codes such as Almaty 727)
  alike, all start with 7 after it, Russian ones never do.
- passport: the letter N then 8 digits (the document number of a Kazakh passport);
- id_card: 9 digits (the document number of a Kazakh identity card);
- email: one @, no spaces, a dot in the domain;
- name: at least one letter.
"""
from __future__ import annotations

import re
from enum import Enum

_W1 = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
_W2 = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)
# ASCII only: \d also matches other scripts' digits, which no register issues.
_DIGITS12 = re.compile(r"[0-9]{12}")
_PHONE = re.compile(r"\+77[0-9]{9}")
_PASSPORT = re.compile(r"N[0-9]{8}")
_ID_CARD = re.compile(r"[0-9]{9}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


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


def is_valid_phone(value: str) -> bool:
    return _PHONE.fullmatch(value) is not None


def is_valid_passport(value: str) -> bool:
    return _PASSPORT.fullmatch(value) is not None


def is_valid_id_card(value: str) -> bool:
    return _ID_CARD.fullmatch(value) is not None


def is_valid_email(value: str) -> bool:
    return _EMAIL.fullmatch(value) is not None


def is_valid_name(value: str) -> bool:
    return any(c.isalpha() for c in value)


class IdentifierKind(str, Enum):
    """What a column holds, named in a regulation (a column's `kind`, a rule's `identifier`)."""

    iin = "iin"
    bin = "bin"
    phone = "phone"
    name = "name"
    email = "email"
    passport = "passport"
    id_card = "id_card"
