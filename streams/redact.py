"""Redaction of free text: identifiers inside it become typed placeholders.

A comment, a complaint or an address note may quote an IIN, a phone or an e-mail. The text
keeps its meaning for analytics, the identifiers do not survive: each one is replaced by
[IIN], [BIN], [PHONE], [EMAIL], [PASSPORT], [ID_CARD] or [ID_NUMBER], and the caller learns
how many of each were found, never which.

Passes run in a fixed order, each on the previous one's output, so that a longer structure
claims its digits before a shorter one could take part of them: e-mails (which may contain
digits), passports, phones, then 12-digit numbers, then 9-digit ID-card numbers. Placeholders
contain no digits, so no later pass can match inside one.

Deliberate bias towards redaction, because a leaked IIN cannot be taken back:
- any 12 digits, contiguous or in groups of 2-12 digits joined by single spaces or dashes
  (850101 300 124, 8501-0130-0124), are redacted; a failed check digit gives [ID_NUMBER],
  since it may be a mistyped IIN. So an amount written '125 000 000 000' is redacted too;
- any run of exactly 9 digits is an [ID_CARD], including a 9-digit amount written unspaced.
Dates (01.01.2024), years and amounts such as 12 500,00 or 125 000 000 are left alone.

The text is read as model/fold.py spells it (invisible characters removed, Unicode spaces,
dashes and digits plain, look-alike letters of a mixed-script word in one script), and the
redacted text is that folded text: an IIN with a zero-width space inside is still an IIN.

Every pattern is anchored on a boundary and has bounded repetitions, so the cost is linear
in the text's length (no catastrophic backtracking); see tests/unit/test_redact.py.
"""
from __future__ import annotations

import re

from model.fold import fold
from model.identifiers import is_valid_bin, is_valid_iin

# One separator between digit groups: a space or a dash. `redact` reads the text folded
# (model/fold.py), where every Unicode space is ' ' and every dash '-'.
_SEP = r"[ \-]"

_EMAIL = re.compile(
    r"(?<![\w.%+-])[\w.%+-]{1,64}"
    r"(?:@|\s?[\[(]\s?(?:at|собака)\s?[\])]\s?)"
    r"[\w-]{1,63}(?:\.[\w-]{1,63}){0,8}\.[^\W\d_]{2,24}(?![\w-])",
    re.IGNORECASE,
)
# N (Latin or Cyrillic Н) then 8 digits: N12345678, N 1234 5678, н-12345678.
_PASSPORT = re.compile(rf"(?<!\w)[NН]{_SEP}?(?:\d{_SEP}?){{7}}\d(?!\d)", re.IGNORECASE)
# +7 / 8 / 7 or nothing, then a 7xx code (optionally bracketed), then 7 digits in any grouping.
_PHONE = re.compile(
    rf"(?<![\w+])(?:(?:\+\s?7|8|7)\s?{_SEP}?\s?)?(?:\(\s?7\d\d\s?\)|7\d\d)\s?{_SEP}?\s?(?:\d{_SEP}?){{6}}\d(?!\d)"
)
# A chain of digit groups (each 2-12 digits) joined by single separators; the lookahead skips
# chains that cannot hold 12 digits before any Python runs.
_DIGIT_CHAIN = re.compile(rf"(?<!\d)(?=\d(?:{_SEP}?\d){{11}})\d{{2,12}}(?:{_SEP}\d{{2,12}})*(?!\d)")
_GROUP = re.compile(r"\d+")
_NINE_DIGITS = re.compile(r"(?<!\d)\d{9}(?!\d)")


def _twelve(digits: str) -> str:
    # ASCII digits: `redact` reads the text folded, where every script's digits are ASCII.
    if is_valid_iin(digits):
        return "IIN"
    if is_valid_bin(digits):
        return "BIN"
    return "ID_NUMBER"


def _redact_chain(chain: str, counts: dict[str, int]) -> str:
    """Replace every run of consecutive groups that holds exactly 12 digits, leftmost first."""
    groups = [(m.start(), m.end()) for m in _GROUP.finditer(chain)]
    pieces, done, i = [], 0, 0
    while i < len(groups):
        total, j = 0, i
        while j < len(groups) and total < 12:
            total += groups[j][1] - groups[j][0]
            j += 1
        if total != 12:
            i += 1
            continue
        start, end = groups[i][0], groups[j - 1][1]
        kind = _twelve("".join(chain[a:b] for a, b in groups[i:j]))
        counts[kind] = counts.get(kind, 0) + 1
        pieces += [chain[done:start], f"[{kind}]"]
        done, i = end, j
    return "".join(pieces) + chain[done:]


# Cheap necessary conditions, so that most texts skip most passes: an e-mail needs an @ (or a
# spelled-out one); every other identifier needs 8 digits with at most 6 characters between
# consecutive ones (the widest gap a phone pattern allows is 5).
_SPELLED_AT = re.compile(r"[\[(]\s?(?:at|собака)\s?[\])]", re.IGNORECASE)
_EIGHT_DIGITS_NEARBY = re.compile(r"\d(?:\D{0,6}\d){7}")


def _replace(pattern: re.Pattern, kind: str, text: str, counts: dict[str, int]) -> str:
    text, found = pattern.subn(f"[{kind}]", text)
    if found:
        counts[kind] = counts.get(kind, 0) + found
    return text


def redact(text: str) -> tuple[str, dict[str, int]]:
    """The text with identifiers replaced, and how many of each placeholder type were put in."""
    counts: dict[str, int] = {}
    text = fold(text)
    if "@" in text or _SPELLED_AT.search(text):
        text = _replace(_EMAIL, "EMAIL", text, counts)
    if _EIGHT_DIGITS_NEARBY.search(text):
        text = _replace(_PASSPORT, "PASSPORT", text, counts)
        text = _replace(_PHONE, "PHONE", text, counts)
        text = _DIGIT_CHAIN.sub(lambda m: _redact_chain(m.group(), counts), text)
        text = _replace(_NINE_DIGITS, "ID_CARD", text, counts)
    return text, counts
