"""One Unicode policy for everything that reads identifiers in text.

Text pasted from documents and web forms carries characters a reader does not see or cannot
tell apart, and an identifier spelled with them must still be one identifier: the same
pseudonym (model/normalize.py), the same redaction (streams/redact.py), the same finding of
the depersonalization check (model/leak_scan.py) and the same verdict of a rule
(streams/quality.py, streams/cross_row/). Each of them reads `fold(text)`, never the text as
sent, so they cannot disagree about a spelling. `fold`:

1. applies NFC, so composed and decomposed letters meet, and reads the full-width forms
   (U+FF01-FF5E) as their ASCII letters, digits and signs (`１２` -> `12`, `ｐ` -> `p`). Not
   NFKC: it would also rewrite what free text means to keep (`№` -> `No`, `м²` -> `м2`);
2. removes invisible characters: every format character (Unicode category Cf: zero-width
   space, joiner and non-joiner, word joiner, BOM, soft hyphen, bidi marks and isolates, tags)
   and the other default-ignorable code points (variation selectors, the combining grapheme
   joiner, Hangul fillers, Mongolian free variation selectors);
3. turns every Unicode space (category Zs, the no-break ones included) into ' ', every dash (category Pd, and U+2212 MINUS
   SIGN) into '-', and every decimal digit of any script (category Nd) into its ASCII digit;
4. inside a word that mixes Latin and Cyrillic letters, replaces each letter of the minority
   script that has a look-alike in the majority script (the Latin/Cyrillic pairs of Unicode
   TR39's confusables, from the confusable-homoglyphs package) with that look-alike, so
   'Нурлaн' with a Latin 'a' is 'Нурлан' and 'Ivаn' with a Cyrillic 'а' is 'Ivan'. On a tie the
   word is taken as Cyrillic, the script of the registers. Words in one script are left alone:
   a Latin 'p' in a Latin word is a 'p'.

What it deliberately does not do: guess a letter for a digit ('O' for '0', 'З' for '3') in an
identifier, which could give two people one pseudonym; fold case (each normalizer decides);
touch line breaks and tabs. ASCII text is returned as it is, which keeps the common case at one
`str.isascii` call. Changing this policy changes pseudonyms: it needs a new key id and a
re-keying, like any change of derivation (docs/depersonalization.md).
"""
from __future__ import annotations

import re
import sys
import unicodedata
from functools import lru_cache

from confusable_homoglyphs import categories, confusables

# Default-ignorable code points that are not in category Cf (Unicode's DerivedCoreProperties).
_IGNORABLE_NOT_CF = [0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180B, 0x180C, 0x180D, 0x180F, 0x3164, 0xFFA0,
                     *range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)]
_MINUS_SIGN = 0x2212
_FULL_WIDTH_OFFSET = 0xFEE0  # U+FF01 FULLWIDTH EXCLAMATION MARK is U+0021 '!' plus this


def _translation() -> dict[int, str | None]:
    table: dict[int, str | None] = {cp: None for cp in _IGNORABLE_NOT_CF}
    table[_MINUS_SIGN] = "-"
    table.update({cp: chr(cp - _FULL_WIDTH_OFFSET) for cp in range(0xFF01, 0xFF5F)})
    for cp in range(0x80, sys.maxunicode + 1):
        if cp in table:
            continue
        category = unicodedata.category(chr(cp))
        if category == "Cf":
            table[cp] = None
        elif category == "Zs":
            table[cp] = " "
        elif category == "Pd":
            table[cp] = "-"
        elif category == "Nd":
            table[cp] = str(unicodedata.digit(chr(cp)))
    return table


_TABLE = _translation()


def _look_alikes() -> tuple[dict[str, str], dict[str, str]]:
    """(Latin -> Cyrillic, Cyrillic -> Latin) single-letter look-alikes from TR39's confusables."""
    to_cyrillic: dict[str, str] = {}
    to_latin: dict[str, str] = {}
    for char, homoglyphs in confusables.confusables_data.items():
        if len(char) != 1 or not char.isalpha():
            continue
        script = categories.alias(char)
        for glyph in (h["c"] for h in homoglyphs):
            if len(glyph) != 1 or not glyph.isalpha():
                continue
            other = categories.alias(glyph)
            if script == "LATIN" and other == "CYRILLIC":
                to_cyrillic.setdefault(char, glyph)
            elif script == "CYRILLIC" and other == "LATIN":
                to_latin.setdefault(char, glyph)
    return to_cyrillic, to_latin


_TO_CYRILLIC, _TO_LATIN = (str.maketrans(m) for m in _look_alikes())
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
_CYRILLIC = re.compile(r"[\u0400-\u052f]")
_MIXED_WORD = re.compile(r"(?<![^\W\d_])(?=[^\W\d_]*[A-Za-z\u00c0-\u024f])(?=[^\W\d_]*[\u0400-\u052f])[^\W\d_]+")


def _one_script(match: re.Match) -> str:
    word = match.group()
    latin, cyrillic = len(_LATIN.findall(word)), len(_CYRILLIC.findall(word))
    return word.translate(_TO_LATIN if latin > cyrillic else _TO_CYRILLIC)


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFC", text).translate(_TABLE)
    if _LATIN.search(text) and _CYRILLIC.search(text):
        text = _MIXED_WORD.sub(_one_script, text)
    return text


# Short values (names, codes, identifiers) recur across rows and columns; long free texts
# rarely do and would make the cache large.
_fold_short = lru_cache(maxsize=1 << 16)(_fold)


def fold(text: str) -> str:
    """`text` as every identifier reader sees it (the module's docstring says how)."""
    if text.isascii():
        return text
    return _fold_short(text) if len(text) <= 128 else _fold(text)
