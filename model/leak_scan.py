"""Find clear identifiers in text that should hold none (clean topics, warehouse columns, logs).

A finding names what kind of identifier was seen and where, never the identifier itself, so
a scan report is safe to log and to store. Two kinds of evidence:
- structural, needing no knowledge of the source: 12 digits (in one run or grouped by spaces
  or dashes) that are a valid IIN (check digit and day digit); a valid BIN where the column is personal; a Kazakh mobile number in
  any spelling; an e-mail address. Pseudonyms are base32, so they do not produce such runs by
  chance, and redaction leaves typed placeholders, not digits;
- known values: names (and phones) taken from the source's own personal columns, matched
  after normalization, catch what no pattern can (a name is just a word).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from model import normalize
from model.fold import fold
from model.identifiers import is_valid_bin, is_valid_iin

# Twelve digits, contiguous or grouped by single spaces or dashes (850101 300124, 8501-0130-0124),
# as redaction reads them (streams/redact.py).
_DIGIT_RUN = re.compile(r"(?<![0-9])[0-9](?:[ \-]?[0-9]){11}(?![0-9])")
_GROUPING = str.maketrans("", "", " -")
_PHONE_LIKE = re.compile(r"(?<![\w+])\+?[78][\s(\-]*7\d{2}[\s)\-]*\d{3}[\s\-]*\d{2}[\s\-]*\d{2}(?![0-9])")
_EMAIL = re.compile(r"[\w.+-]*[^\W\d_][\w.+-]*@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}")
# Whole words only: names fold to Latin, and letter runs inside base32 pseudonyms would
# otherwise match short names ("kim", "dana").
_WORD = re.compile(r"(?<![^\W_])[^\W\d_]{3,}(?![^\W_])")


@dataclass(frozen=True)
class Finding:
    kind: str        # iin | bin | phone | email | name
    where: str       # e.g. "udw.demo__population__persons.status" or "topic@42"


@dataclass
class KnownValues:
    """Normalized clear values from the source that must never appear downstream."""

    phones: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)

    def add_phone(self, value: str | None) -> None:
        canonical = normalize.phone(value) if value else None
        if canonical:
            self.phones.add(canonical)

    def add_name(self, value: str | None) -> None:
        for word in _WORD.findall(fold(value or "")):
            canonical = normalize.name(word)
            if canonical:
                self.names.add(canonical)


_EMPTY = KnownValues()


@lru_cache(maxsize=1 << 16)
def structural_kinds(text: str) -> tuple[str, ...]:
    """The kinds of identifier `text` holds by structure alone (no known values), cached: the
    processor asks for every text value it sends on, and most values recur (a status, a code)."""
    return tuple(finding.kind for finding in scan_text(text, ""))


# A pseudonym's two shapes (streams/keys.py `pseudonym`, streams/depersonalize.py): 52 characters
# of lowercase base32, or INVALID_PREFIX and 26 of them for a value that was no valid identifier.
INVALID_PREFIX = "invalid:"
_PSEUDONYM = re.compile(r"[a-z2-7]{52}|" + re.escape(INVALID_PREFIX) + r"[a-z2-7]{26}")


def structural_kinds_in_hashed(values: Iterable[Any]) -> set[str]:
    """`structural_kinds_in` for a hashed column: a value of a pseudonym's shape is passed over
    (base32 holds none of the structures above; the processor's check does not read hashed
    columns at all), anything else in the column is scanned. A hashed column's values never
    recur in a batch the way statuses and codes do, so scanning each cost the sink's check
    most of its time."""
    return structural_kinds_in(value for value in values
                               if not (value.__class__ is str and _PSEUDONYM.fullmatch(value)))


def structural_kinds_of(value: Any) -> Iterable[str]:
    """The kinds `structural_kinds` finds in one value: a text, or the texts inside a list (an
    identifier must not slip through as an array element); other values are not text."""
    if isinstance(value, str):
        return structural_kinds(value) if value else ()
    if isinstance(value, list):
        return {kind for text in value if isinstance(text, str) and text for kind in structural_kinds(text)}
    return ()


def structural_kinds_in(values: Iterable[Any]) -> set[str]:
    """The kinds `structural_kinds_of` finds in any of `values`."""
    kinds: set[str] = set()
    for value in values:
        kinds.update(structural_kinds_of(value))
    return kinds


def scan_text(text: str, where: str, known: KnownValues = _EMPTY, *, personal: bool = False) -> list[Finding]:
    """Every kind of identifier found in `text` (each kind at most once)."""
    findings = []
    text = fold(text)
    runs = [run.translate(_GROUPING) for run in _DIGIT_RUN.findall(text)]
    if any(is_valid_iin(run) for run in runs):
        findings.append(Finding("iin", where))
    if personal and any(is_valid_bin(run) for run in runs):
        findings.append(Finding("bin", where))
    if any(normalize.phone(m.group()) for m in _PHONE_LIKE.finditer(text)):
        findings.append(Finding("phone", where))
    if "@" in text and _EMAIL.search(text):  # the cheap test keeps long texts linear
        findings.append(Finding("email", where))
    if known.names and any(normalize.name(w) in known.names for w in _WORD.findall(text)):
        findings.append(Finding("name", where))
    return findings
