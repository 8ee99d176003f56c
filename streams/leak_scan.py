"""Find clear identifiers in text that should hold none (clean topics, warehouse columns).

A finding names what kind of identifier was seen and where, never the identifier itself, so
a scan report is safe to log. Two kinds of evidence:
- structural: any 12-digit run that is a valid IIN (check digit and day digit) is a leak
  wherever it appears; pseudonyms are base32, so they do not produce such runs by chance;
- known values: phones and names taken from the source's own columns, matched after
  normalization, catch what no pattern can (a name is just a word).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from streams import normalize
from streams.identifiers import is_valid_iin

_DIGIT_RUN = re.compile(r"(?<!\d)\d{12}(?!\d)")
_PHONE_LIKE = re.compile(r"(?<![\w+])\+?[78][\s(\-]*\d{3}[\s)\-]*\d{3}[\s\-]*\d{2}[\s\-]*\d{2}(?!\d)")
_WORD = re.compile(r"[^\W\d_]{3,}")


@dataclass(frozen=True)
class Finding:
    kind: str        # iin | phone | name
    where: str       # e.g. "udw.demo__population__persons.status" or "topic[0]@42"


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
        canonical = normalize.name(value) if value else None
        if canonical and len(canonical) >= 3:
            self.names.add(canonical)


def scan_text(text: str, where: str, known: KnownValues) -> list[Finding]:
    findings = []
    if any(is_valid_iin(m.group()) for m in _DIGIT_RUN.finditer(text)):
        findings.append(Finding("iin", where))
    if known.phones and any(normalize.phone(m.group()) in known.phones for m in _PHONE_LIKE.finditer(text)):
        findings.append(Finding("phone", where))
    if known.names and any(normalize.name(w) in known.names for w in _WORD.findall(text)):
        findings.append(Finding("name", where))
    return findings
