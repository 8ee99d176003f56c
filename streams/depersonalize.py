"""Column actions from the regulation, compiled once per table and applied to every row.

A row leaves this module with no clear identifier: hashed columns carry an HMAC pseudonym,
dropped columns are gone, generalized columns hold only the coarse value, redacted text has
its identifiers replaced by placeholders. A value that fails its identifier's validation is
never hashed as if it were valid: it gets the `invalid:` marker (a keyed hash under a separate
subkey, so equal bad values still group together) and is reported as a defect by column name
only. A value that cannot be generalized becomes null, with a defect.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Callable

from model.regulation import Action, Column, Generalization, Table
from model import normalize
from model.fold import fold
from model.reference import kato_region
from model.types.values import Beyond, fitter
from streams.decode import decoder
from streams.keys import KeyRing, pseudonym
from model.leak_scan import INVALID_PREFIX, structural_kinds_of
from streams.redact import redact


@dataclass(frozen=True)
class Defect:
    column: str
    problem: str  # never contains the value itself


# --- generalizers: a quasi-identifier becomes a value shared by many people ------------------

# Kazpost codes since 2015: region letter, 2 digits (city or district), 4 letters and digits
# (street and house), e.g. 'A01 P3K4'. Before 2015: 6 digits, the first two the region.
_POSTCODE = re.compile(r"([A-Z])[0-9]{2} ?[A-Z0-9]{4}")
_OLD_POSTCODE = re.compile(r"[0-9]{6}")
_AGE_BAND_WIDTH, _AGE_BAND_TOP = 10, 80


def age_band(birth: date, today: date) -> str | None:
    """'30-39' for a person aged 30 to 39 on `today`, '80+' from 80; None if born after `today`."""
    age = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
    if age < 0:
        return None
    if age >= _AGE_BAND_TOP:
        return f"{_AGE_BAND_TOP}+"
    low = age - age % _AGE_BAND_WIDTH
    return f"{low}-{low + _AGE_BAND_WIDTH - 1}"


def postcode_region(code: str) -> str | None:
    """The region letter of a Kazpost code ('A' for 'A01 P3K4'), or 'old:NN' for a 6-digit code."""
    text = code.strip().upper()
    match = _POSTCODE.fullmatch(text)
    if match:
        return match.group(1)
    return "old:" + text[:2] if _OLD_POSTCODE.fullmatch(text) else None


# Addresses are matched after folding case, ё and the Kazakh letters to their nearest Russian
# ones, so one pattern serves 'Ақтөбе' and 'Актобе', 'Қарағанды' and 'Караганды'.
_ADDRESS_FOLD = str.maketrans("ёәғқңөұүһі", "еагкноуухи")
_OBL = r"\s*обл"  # область, области, обл., облысы
_CITY_MARK_BEFORE = r"(?:г\.?\s*|гор\.\s*|город\w*\s+)"
_CITY_MARK_AFTER = r"\s+к(?:\.|аласы)"
_RU_END = r"(?:а|е|у|ом)?\b"          # masculine city names: Тараз, Таразе, Таразом
_FEMININE_ADJ = r"(?:ая|ой|ую)\b"     # the oblast adjective without the word 'область'
# (tier, KATO region prefix, pattern). The lowest tier found wins, then the earliest match.
# Tier 0, cities: since the 2018 and 2022 reforms moved Shymkent, Semey, Taldykorgan and
# Zhezkazgan to new regions, a city outranks an old region name written next to it.
# Tier 1, region names with the word 'область' / 'облысы', or their abbreviations.
# Tier 2, names that usually, not always, mean a region (a bare adjective, Жетісу, Ұлытау).
_REGIONS: list[tuple[int, str, str]] = [
    (0, "71", r"астан(?:а|ы|е|у|ой)\b|нур[\s-]*султан\w*|целиноград\w*"),
    (0, "75", r"алматы\b(?!\s*(?:обл|аудан|район|р-н))|алма[\s-]*ат\w*"),
    (0, "79", rf"шымкент{_RU_END}|чимкент{_RU_END}"),
    (0, "10", rf"семипалатинск{_RU_END}|{_CITY_MARK_BEFORE}семе(?:й|я|ю|е|ем)\b|семей{_CITY_MARK_AFTER}"),
    (0, "11", r"кокшетау\b|кокчетав\w*"),
    (0, "15", rf"актобе\b|актюбинск{_RU_END}"),
    (0, "19", rf"{_CITY_MARK_BEFORE}(?:конаев|капшагай|капчагай){_RU_END}|(?:конаев|капшагай){_CITY_MARK_AFTER}"),
    (0, "23", r"атырау\b"),
    (0, "27", rf"уральск{_RU_END}|{_CITY_MARK_BEFORE}орал\b|орал{_CITY_MARK_AFTER}"),
    (0, "31", rf"тараз{_RU_END}"),
    (0, "33", rf"талдыкорган{_RU_END}"),
    (0, "35", r"караганд(?:а|ы|е|у|ой)\b"),
    (0, "39", r"(?:костана|кустана)(?:й|я|е|ю|ем)\b"),
    (0, "43", r"кызылорд(?:а|ы|е|у|ой)\b"),
    (0, "47", r"актау\b"),
    (0, "55", rf"павлодар{_RU_END}"),
    (0, "59", rf"петропавловск{_RU_END}|петропавл\b"),
    (0, "61", rf"туркестан{_RU_END}|туркистан\b"),
    (0, "62", rf"жезказган{_RU_END}"),
    (0, "63", rf"усть[\s-]*каменогорск{_RU_END}|оскемен\b"),
    (1, "10", rf"абай(?:ск\w*)?{_OBL}|област\w*\s+абай\b"),
    (1, "11", rf"(?:акмолинск\w*|акмола){_OBL}"),
    (1, "15", rf"актюбинск\w*{_OBL}"),
    (1, "19", rf"(?:алматинск\w*|алматы){_OBL}"),
    (1, "23", rf"атырауск\w*{_OBL}"),
    (1, "27", rf"(?:западно[\s-]*казахстанск\w*|батыс\s+казакстан\w*){_OBL}|(?:зко|бко)\b"),
    (1, "31", rf"(?:жамбылск\w*|жамбыл){_OBL}"),
    (1, "33", rf"жет[иы]су(?:ск\w*)?{_OBL}|област\w*\s+жет[иы]су\b"),
    (1, "35", rf"карагандинск\w*{_OBL}"),
    (1, "39", rf"(?:костанайск|кустанайск)\w*{_OBL}"),
    (1, "43", rf"кызылординск\w*{_OBL}"),
    (1, "47", rf"манг[иы]стау(?:ск\w*)?{_OBL}"),
    (1, "55", rf"павлодарск\w*{_OBL}"),
    (1, "59", rf"(?:северо[\s-]*казахстанск\w*|солтустик\s+казакстан\w*){_OBL}|ско\b"),
    # South Kazakhstan region was renamed Turkestan in 2018 (Shymkent, tier 0, left it).
    (1, "61", rf"(?:туркестанск\w*|южно[\s-]*казахстанск\w*|онтустик\s+казакстан\w*){_OBL}|юко\b"),
    (1, "62", rf"улытау(?:ск\w*)?{_OBL}|област\w*\s+улытау\b"),
    (1, "63", rf"(?:восточно[\s-]*казахстанск\w*|шыгыс\s+казакстан\w*){_OBL}|(?:вко|шко)\b"),
    (2, "10", rf"абайск{_FEMININE_ADJ}"),
    (2, "11", rf"акмолинск{_FEMININE_ADJ}|акмол[аы]\b"),
    (2, "15", rf"актюбинск{_FEMININE_ADJ}"),
    (2, "19", rf"алматинск{_FEMININE_ADJ}"),
    (2, "23", rf"атырауск{_FEMININE_ADJ}"),
    (2, "27", rf"западно[\s-]*казахстанск{_FEMININE_ADJ}"),
    (2, "31", rf"жамбылск{_FEMININE_ADJ}"),
    (2, "33", r"жет[иы]су\b"),
    (2, "35", rf"карагандинск{_FEMININE_ADJ}"),
    (2, "39", rf"(?:костанайск|кустанайск){_FEMININE_ADJ}"),
    (2, "43", rf"кызылординск{_FEMININE_ADJ}"),
    (2, "47", rf"манг[иы]стау(?:ск{_FEMININE_ADJ}|\b)"),
    (2, "55", rf"павлодарск{_FEMININE_ADJ}"),
    (2, "59", rf"северо[\s-]*казахстанск{_FEMININE_ADJ}"),
    (2, "61", rf"туркестанск{_FEMININE_ADJ}"),
    (2, "62", rf"улытау(?:ск{_FEMININE_ADJ}|\b)"),
    (2, "63", rf"восточно[\s-]*казахстанск{_FEMININE_ADJ}"),
]
# Streets and microdistricts are often named after cities (ул. Астана, Абай даңғылы): such a
# name is matched first, as one piece, so that it never counts as a place.
_STREET = (r"(?:ул|улица|пр-т|пр|проспект|пер|переулок|бульвар|б-р|мкрн|мкр|микрорайон|наб|тупик)\b\.?\s*[\w-]+"
           r"|[\w-]+\s+(?:кошеси|кош\.|к-си|дангылы|дан\.|шагын\s+ауданы|ш/а)")
_ADDRESS = re.compile(
    r"(?<!\w)(?:(?P<street>" + _STREET + ")|"
    + "|".join(f"(?P<r{i}>{pattern})" for i, (_, _, pattern) in enumerate(_REGIONS)) + ")"
)


def address_region(address: str) -> str | None:
    """The 2-digit KATO region named in a free-text address, or None when none is.

    Russian and Kazakh spellings, any case, declined city names (в Таразе, Караганды). A name
    that a reader would also doubt is left alone: 'Семей' and 'Орал' count only with a city
    marker ('г. Семей', 'Орал қ.'), since they are also a word and a first name.
    """
    best: tuple[int, str] | None = None
    for match in _ADDRESS.finditer(address.casefold().translate(_ADDRESS_FOLD)):
        if match.lastgroup == "street":
            continue
        tier, code, _ = _REGIONS[int(match.lastgroup[1:])]
        if best is None or tier < best[0]:  # on a tie the earlier match stays
            best = (tier, code)
    return best[1] if best else None


# --- per-table plans ---------------------------------------------------------------------------

# A step's function takes the raw value and the reference date and returns the output value
# with the problem to report (None when there is none).
StepFunction = Callable[[Any, date], tuple[Any, str | None]]


class _Hasher:
    def __init__(self, ring: KeyRing, kind: str) -> None:
        self._key = ring.subkey(kind)
        self._invalid_key = ring.subkey(f"invalid/{kind}")
        self._normalize = normalize.BY_KIND[kind]
        self._problem = f"not a valid {kind}"

    def __call__(self, value: str) -> tuple[str, str | None]:
        canonical = self._normalize(value)
        if canonical is None:
            # Folded like a valid one, so an invalid value has one pseudonym however it is spelled.
            return INVALID_PREFIX + pseudonym(self._invalid_key, fold(value).encode(), 26), self._problem
        return pseudonym(self._key, canonical.encode()), None


def _checked(generalize: Callable[[Any], Any], problem: str) -> Callable[[Any], tuple[Any, str | None]]:
    def step(value: Any) -> tuple[Any, str | None]:
        result = generalize(value)
        return result, (problem if result is None else None)
    return step


_TEXT_GENERALIZERS = {
    Generalization.kato_region: _checked(kato_region, "not a 9-digit KATO code"),
    Generalization.address_region: _checked(address_region, "no region found"),
    Generalization.postcode_region: _checked(postcode_region, "not a Kazakh postcode"),
}


def _step_function(column: Column, ring: KeyRing, hashers: dict[str, _Hasher]) -> StepFunction:
    decode = decoder(column.source_type)
    if column.action is Action.hash:
        kind = column.kind.value
        hasher = hashers.setdefault(kind, _Hasher(ring, kind))
        return lambda v, today: hasher(decode(v))
    if column.action is Action.redact:
        return lambda v, today: (redact(decode(v))[0], None)
    if column.to is Generalization.year:
        def year(v: Any, today: date) -> tuple[int | None, str | None]:
            # From the source value: a birth date of 1850 has a year, though ClickHouse's Date32
            # could not hold the date itself; ±infinity has none.
            value = decode(v)
            return (None, f"{value} has no year") if isinstance(value, Beyond) else (value.year, None)
        return year
    if column.to is Generalization.age_band:
        def band(v: Any, today: date) -> tuple[str | None, str | None]:
            value = decode(v)
            if isinstance(value, Beyond):
                return None, f"{value} has no age"
            result = age_band(value, today)
            return result, ("date after the reference date" if result is None else None)
        return band
    if column.action is Action.generalize:
        generalize = _TEXT_GENERALIZERS[column.to]
        return lambda v, today: generalize(fold(decode(v)))
    fit = fitter(column.output_types[1])
    if fit is not None:
        # A kept value ClickHouse cannot hold takes its documented representation, with a defect
        # (model/types/values.py); the row is loaded.
        return lambda v, today: fit(decode(v))
    return lambda v, today: (decode(v), None)


@dataclass(frozen=True)
class _Step:
    source: str
    output: str
    apply: StepFunction


class TablePlan:
    """What happens to each column of one table, with decoding and depersonalization fused."""

    def __init__(self, table: Table, ring: KeyRing) -> None:
        self.table = table
        self.key_id = ring.key_id
        hashers: dict[str, _Hasher] = {}
        self.steps = [_Step(c.name, c.output_name, _step_function(c, ring, hashers))
                      for c in table.columns if c.action is not Action.drop]
        self.output_columns = [s.output for s in self.steps]
        # What the depersonalization check reads: every text output that may carry source text
        # (kept, redacted and generalized columns, keys among them), as the sink's check reads
        # the warehouse's String columns; pseudonyms are base32, and a UUID's last group of 12
        # digits is no IIN.
        self.checked_outputs = tuple(c.output_name for c in table.columns
                                     if c.action not in (Action.drop, Action.hash) and "String" in c.output_types[1])

    def clear_identifiers(self, record: dict[str, Any]) -> dict[str, tuple[str, ...]]:
        """Output column -> kinds of clear identifier its text holds (the check in the processor)."""
        found: dict[str, tuple[str, ...]] = {}
        for name in self.checked_outputs:
            kinds = structural_kinds_of(record.get(name))
            if kinds:
                found[name] = tuple(sorted(kinds))
        return found

    def apply(self, row: dict[str, Any], today: date | None = None) -> tuple[dict[str, Any], list[Defect]]:
        """Depersonalize one source row (Debezium's `after` or `before`).

        `today` is the reference date of age bands: the event's source commit date when the
        caller has it, else the current UTC date. Raises ValueError naming the column (not the
        value) when a value cannot be decoded.
        """
        today = today or datetime.now(timezone.utc).date()
        out: dict[str, Any] = {}
        defects: list[Defect] = []
        for step in self.steps:
            value = row.get(step.source)
            if value is None:
                out[step.output] = None
                continue
            try:
                result, problem = step.apply(value, today)
            except (ValueError, TypeError, ArithmeticError, OverflowError, AttributeError) as exc:
                # The exception text may quote the value; keep only its type. AttributeError:
                # a declared type whose values a normalizer or generalizer cannot read.
                raise ValueError(f"column {step.source}: cannot decode a {type(value).__name__} "
                                 f"as declared ({type(exc).__name__})") from None
            if problem is not None:
                defects.append(Defect(step.source, problem))
            out[step.output] = result
        return out, defects

    def salvage(self, row: dict[str, Any], today: date | None = None) -> dict[str, Any]:
        """Whatever columns can be depersonalized, for a quarantined event; the rest omitted."""
        today = today or datetime.now(timezone.utc).date()
        out: dict[str, Any] = {}
        for step in self.steps:
            value = row.get(step.source)
            try:
                out[step.output] = None if value is None else step.apply(value, today)[0]
            except (ValueError, TypeError, ArithmeticError, OverflowError, AttributeError):
                continue
        for name in self.clear_identifiers(out):
            del out[name]  # a quarantine record must not carry what the check would stop
        return out

    def key_only(self, row: dict[str, Any]) -> dict[str, Any]:
        """The depersonalized primary key of a delete event; every other column is null."""
        keys = set(self.table.primary_key)
        full, _ = self.apply({k: v for k, v in row.items() if k in keys})
        return full


def plans_for(tables: list[Table], ring: KeyRing) -> dict[str, TablePlan]:
    return {t.name: TablePlan(t, ring) for t in tables}
