"""Normalizers: the same person's identifier spelled differently must give one pseudonym.

`BY_KIND[kind](value)` returns the canonical string, or None when the value is not a valid
identifier of that kind (the validators are in model/identifiers.py). Separators people type
(spaces, dashes, brackets in phones) are removed; anything else that is not part of the
identifier (letters in an IIN, a '+8' country code) makes the value invalid rather than being
silently stripped, because a guess could give two people one pseudonym.

Names are folded to a Latin skeleton so that a person keeps one pseudonym whether a source
writes the name in Kazakh or Russian Cyrillic, in the passport's Latin transliteration
(ICAO 9303: Ж=zh, Х=kh, Ш=sh, Ы=y, Я=ia) or in the Kazakh Latin alphabet of 2021 (ä ğ ı ñ ö
ş ū ü, with q for Қ and j for Ж):
- case, spacing and Unicode form (NFC/NFD) do not matter, nor anything model/fold.py folds; ё is е;
- Cyrillic letters become Latin ones; Kazakh-specific letters take the sound of their nearest
  Russian letter (ә→a, ғ→g, қ→k, ң→n, ө→o, ұ→u, ү→u, һ→h, і→i); ъ and ь disappear;
- Latin diacritics are removed, except ş→sh and ç→ch, which would otherwise lose a sound;
- q→k, j→zh, kh→h; ı, y, й, ы, і and и all become i, and a run of i is one i (so the
  endings -ия/-ya/-ia and -ий/-iy/-y meet).
So 'Нұрлан Әлібеков', 'НҰРЛАН  ӘЛІБЕКОВ', 'Nurlan Alibekov' and 'Nurlan Älibekov' all give
'nurlan alibekov'. The trade-off is deliberate: joins across sources with different scripts
work, at the cost of rare false merges of distinct names (Ашат and Асхат both give 'ashat',
Ілияс and Ильяс both 'ilias'). A name pseudonym is a join key, never proof of identity.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache, wraps
from typing import Callable

from model.fold import fold

from model.identifiers import (is_valid_bin, is_valid_email, is_valid_id_card, is_valid_iin,
                                 is_valid_name, is_valid_passport, is_valid_phone)

_NON_DIGITS = re.compile(r"[^0-9]")
_SPACES = re.compile(r"\s+")
_SEPARATORS = re.compile(r"[\s\-]+")
_DIGITS_SPACES_DASHES = re.compile(r"[0-9\s\-]+")
_PHONE_SPELLING = re.compile(r"(\+?)([0-9\s().\-]+)")

# Applied after NFC and casefold; Kazakh letters do not decompose, so they are listed here.
_CYRILLIC_TO_LATIN = str.maketrans({
    "а": "a", "ә": "a", "б": "b", "в": "v", "г": "g", "ғ": "g", "д": "d", "е": "e", "ё": "e",
    "ж": "zh", "з": "z", "и": "i", "й": "i", "і": "i", "к": "k", "қ": "k", "л": "l", "м": "m",
    "н": "n", "ң": "n", "о": "o", "ө": "o", "п": "p", "р": "r", "с": "s", "т": "t", "у": "u",
    "ұ": "u", "ү": "u", "ф": "f", "х": "h", "һ": "h", "ц": "ts", "ч": "ch", "ш": "sh",
    "щ": "shch", "ъ": "", "ы": "i", "ь": "", "э": "e", "ю": "iu", "я": "ia",
    # Kazakh Latin letters whose base letter alone would lose a sound.
    "ş": "sh", "ç": "ch",
})
# Applied after diacritics are gone: the remaining Latin spellings of one sound.
_LATIN_VARIANTS = str.maketrans({
    "ı": "i", "y": "i", "q": "k", "j": "zh",
    "'": "", "\u2019": "", "\u02bc": "", "`": "",  # apostrophes stand for ъ/ь in transliterations
})
_KH = re.compile("kh")
_I_RUN = re.compile("i{2,}")


def _twelve_digits(value: str) -> str | None:
    text = value.strip()
    if len(text) > 16 or not _DIGITS_SPACES_DASHES.fullmatch(text):
        return None
    return _NON_DIGITS.sub("", text)


def iin(value: str) -> str | None:
    digits = _twelve_digits(value)
    return digits if digits is not None and is_valid_iin(digits) else None


def bin_(value: str) -> str | None:
    digits = _twelve_digits(value)
    return digits if digits is not None and is_valid_bin(digits) else None


def phone(value: str) -> str | None:
    """Kazakh numbers (mobile and landline) to E.164 `+77XXXXXXXXX`; None when it is not one.

    Accepted spellings: '+7' and 10 digits, '8' or '7' and 10 digits, or the bare 10 digits,
    with spaces, dashes, dots and brackets anywhere. '+8' is refused: it is not a country code
    anyone dials for Kazakhstan, so it is a typo whose intent we cannot know.
    """
    match = _PHONE_SPELLING.fullmatch(value.strip())
    if match is None:
        return None
    plus, digits = match.group(1), _NON_DIGITS.sub("", match.group(2))
    if plus:
        candidate = "+" + digits
    elif len(digits) == 11 and digits[0] in "78":
        candidate = "+7" + digits[1:]
    elif len(digits) == 10:
        candidate = "+7" + digits
    else:
        return None
    return candidate if is_valid_phone(candidate) else None


def name(value: str) -> str | None:
    text = value.casefold().translate(_CYRILLIC_TO_LATIN)  # NFC already: every normalizer reads folded text
    text = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    text = _I_RUN.sub("i", _KH.sub("h", text.translate(_LATIN_VARIANTS)))
    text = _SPACES.sub(" ", text).strip()
    return text if is_valid_name(text) else None


def email(value: str) -> str | None:
    text = value.strip().casefold()
    return text if is_valid_email(text) else None


def passport(value: str) -> str | None:
    """'N 1234 5678', 'н12345678' (Cyrillic Н) and 'N-12345678' all give 'N12345678'."""
    text = _SEPARATORS.sub("", value)
    if text[:1] in ("N", "n", "Н", "н"):
        text = "N" + text[1:]
    return text if is_valid_passport(text) else None


def id_card(value: str) -> str | None:
    text = value.strip()
    if not _DIGITS_SPACES_DASHES.fullmatch(text):
        return None
    digits = _NON_DIGITS.sub("", text)
    return digits if is_valid_id_card(digits) else None


def _folded(normalizer: Callable[[str], str | None]) -> Callable[[str], str | None]:
    # Every normalizer reads the value as model/fold.py's policy spells it (invisible characters
    # gone, Unicode spaces, dashes and digits plain, mixed-script look-alikes in one script), so
    # a spelling pasted from a document gives the pseudonym of its clean twin.
    @wraps(normalizer)
    def normalized(value: str) -> str | None:
        return normalizer(fold(value))
    return normalized


# Each normalizer is pure and an identifier recurs (in several rules and columns of one row,
# in many rows): cached, so each spelling is normalized once, whatever asks for it.
iin, bin_, phone, name, email, passport, id_card = (
    lru_cache(maxsize=1 << 16)(_folded(f)) for f in (iin, bin_, phone, name, email, passport, id_card))
BY_KIND = {"iin": iin, "bin": bin_, "phone": phone, "name": name, "email": email,
           "passport": passport, "id_card": id_card}
