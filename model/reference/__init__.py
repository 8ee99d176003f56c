"""Reference lists: the codes an accuracy rule's `check: reference` accepts (docs/regulation.md).

One CSV file per list in this package, named for the list (`kato_regions.csv`): a `code`
column, then any others (names in Russian and Kazakh, say). A source value matches a list when
it equals one of its codes, except where a list says otherwise (`_MATCHERS`): a source holds
full 9-digit KATO codes while `kato_regions` holds the regions' 2-digit prefixes.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

REFERENCE_DIR = Path(__file__).resolve().parent
_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_KATO = re.compile(r"[0-9]{9}")


class ReferenceDataError(ValueError):
    """A reference list is unknown or malformed; the message names it and the files there are."""


@dataclass(frozen=True)
class Reference:
    """A reference list from model/reference/<name>.csv."""

    name: str
    rows: dict[str, dict[str, str]]   # code -> the CSV row
    contains: Callable[[str], bool]   # does a source value match a known code


def kato_region(code: str) -> str | None:
    """The 2-digit region of a 9-digit KATO code."""
    code = code.strip()
    return code[:2] if _KATO.fullmatch(code) else None


def _exact(codes: frozenset[str]) -> Callable[[str], bool]:
    return lambda value: value.strip() in codes


def _kato_prefix(codes: frozenset[str]) -> Callable[[str], bool]:
    def contains(value: str) -> bool:
        region = kato_region(value)
        return region is not None and region in codes
    return contains


# How a source value is matched against a list; by default it must equal one of its codes.
_MATCHERS: dict[str, Callable[[frozenset[str]], Callable[[str], bool]]] = {"kato_regions": _kato_prefix}


def reference_names() -> list[str]:
    return sorted(p.stem for p in REFERENCE_DIR.glob("*.csv"))


@lru_cache(maxsize=None)
def load_reference(name: str) -> Reference:
    path = REFERENCE_DIR / f"{name}.csv"
    if not _NAME.fullmatch(name) or not path.is_file():
        raise ReferenceDataError(f"no reference data {name!r}; available: {', '.join(reference_names()) or 'none'} "
                                 f"(files in {REFERENCE_DIR})")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or reader.fieldnames[0] != "code":
            raise ReferenceDataError(f"{path}: the first column must be 'code'")
        rows = {row["code"].strip(): row for row in reader if row.get("code", "").strip()}
    if not rows:
        raise ReferenceDataError(f"{path}: no codes")
    return Reference(name, rows, _MATCHERS.get(name, _exact)(frozenset(rows)))


def kato_regions() -> dict[str, tuple[str, str]]:
    """The 2-digit KATO region prefixes -> (Russian name, Kazakh name)."""
    return {code: (row["name_ru"], row["name_kk"]) for code, row in load_reference("kato_regions").rows.items()}
