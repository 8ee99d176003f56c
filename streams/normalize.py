"""Normalizers: the same person's identifier spelled differently must give one pseudonym."""
from __future__ import annotations

import re
import unicodedata

from streams.identifiers import is_valid_bin, is_valid_iin

_NON_DIGITS = re.compile(r"\D")
_SPACES = re.compile(r"\s+")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def iin(value: str) -> str | None:
    digits = _NON_DIGITS.sub("", value)
    return digits if is_valid_iin(digits) and len(value.strip()) <= 16 else None


def bin_(value: str) -> str | None:
    digits = _NON_DIGITS.sub("", value)
    return digits if is_valid_bin(digits) and len(value.strip()) <= 16 else None


def phone(value: str) -> str | None:
    """Kazakh mobile numbers to E.164 (+7XXXXXXXXXX); None when it is not one."""
    if re.search(r"[^\d\s()+\-.]", value):
        return None
    digits = _NON_DIGITS.sub("", value)
    if len(digits) == 11 and digits[0] in "78":
        digits = "7" + digits[1:]
    elif len(digits) == 10:
        digits = "7" + digits
    else:
        return None
    return "+" + digits if digits[1] == "7" else None


def name(value: str) -> str | None:
    text = unicodedata.normalize("NFC", value).casefold().replace("ё", "е")
    text = _SPACES.sub(" ", text).strip()
    return text or None


def email(value: str) -> str | None:
    text = value.strip().casefold()
    return text if _EMAIL.match(text) else None


BY_KIND = {"iin": iin, "bin": bin_, "phone": phone, "name": name, "email": email}
