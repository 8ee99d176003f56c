"""PostgreSQL's text form of a value (a CSV field, psql's output), read as PostgreSQL would store it.

`text_parser(declared)` reads a value's text form, as a CSV export writes it, into exactly the
Python value the processor's decoder (streams/decode) gives for the same datum arriving through
Debezium. Historical loads (R394 §21) parse each field with it, the Debezium encoder
(connectors/debezium_encode.py) turns the result into Debezium's JSON, and the row then takes
the router's one decode-and-depersonalize path, so it becomes the very record a CDC event of the
same row would; the marker poller reads the types psycopg would lose (interval, money, timetz,
arrays) the same way. It accepts what PostgreSQL itself would store and refuses the rest
(integers out of range, over-long varchar, a timestamptz without its offset) with ValueRefused,
whose message says what is wrong and never quotes the value.

Debezium sends timetz, interval and inet in PostgreSQL's own spelling: the decoders read them
with `clock_and_offset`, `iso_interval` and `network` from here.
"""
from __future__ import annotations

import ipaddress
import json
import math
import re
import struct
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from typing import Any, Callable

from model.types.postgresql import parse_pg_type
from model.types.values import (DAY_MICROS, MICROSECOND, ValueRefused, day_in_range, enum_label, instant_in_range,
                                integer_in_range, interval_value, money, refused_unless_numeric, refusing, string,
                                decimal_text)

# --- spellings Debezium shares with the text form: time of day, ISO 8601 intervals, addresses ------

# A time of day's text; timetz arrives from Debezium already shifted to UTC (with a Z).
_CLOCK = r"(?P<H>[0-9]{1,2}):(?P<M>[0-9]{2})(?::(?P<S>[0-9]{2})(?:[.,](?P<f>[0-9]+))?)?"
_OFFSET = r"(?:(?P<utc>Z|UTC|GMT)|(?P<sign>[+-])(?P<zh>[0-9]{1,2})(?::?(?P<zm>[0-9]{2})(?::?(?P<zs>[0-9]{2}))?)?)"
_TIME_OF_DAY = re.compile(r"\s*" + _CLOCK + r"\s*" + _OFFSET + r"?\s*", re.IGNORECASE)


def _fraction_micros(digits: str) -> int:
    if len(digits) <= 6:
        return int(digits.ljust(6, "0"))
    # PostgreSQL rounds extra digits half to even
    return int(Decimal(f"{digits[:6]}.{digits[6:]}").to_integral_value(ROUND_HALF_EVEN))


def clock_and_offset(text: str) -> tuple[int, int | None]:
    """(microseconds since midnight, UTC offset in microseconds or None) of a time's text."""
    match = _TIME_OF_DAY.fullmatch(text)
    if match is None:
        raise ValueRefused("not a time of day (HH:MM[:SS[.ffffff]], with an offset for timetz)")
    hours, minutes, seconds = int(match.group("H")), int(match.group("M")), int(match.group("S") or 0)
    if minutes > 59 or seconds > 59:
        raise ValueRefused("not a valid time of day")
    micros = ((hours * 60 + minutes) * 60 + seconds) * 1_000_000 + _fraction_micros(match.group("f") or "")
    if micros > DAY_MICROS:
        raise ValueRefused("time of day outside 00:00:00..24:00:00")
    if match.group("utc"):
        return micros, 0
    if match.group("sign"):
        offset = (int(match.group("zh")) * 3600 + int(match.group("zm") or 0) * 60 + int(match.group("zs") or 0))
        if offset >= 24 * 3600:
            raise ValueRefused("not a valid UTC offset")
        return micros, (-offset if match.group("sign") == "-" else offset) * 1_000_000
    return micros, None


def utc_time_of_day(micros: int, offset: int) -> int:
    # As Java's OffsetTime.withOffsetSameInstant(UTC), which Debezium applies: wraps around midnight.
    return micros if offset == 0 else (micros - offset) % DAY_MICROS


_ISO_INTERVAL = re.compile(
    r"\s*P(?=[-+0-9T])(?:(?P<Y>[+-]?[0-9]+)Y)?(?:(?P<Mo>[+-]?[0-9]+)M)?(?:(?P<W>[+-]?[0-9]+)W)?"
    r"(?:(?P<D>[+-]?[0-9]+)D)?(?:T(?=[-+0-9])(?:(?P<H>[+-]?[0-9]+)H)?(?:(?P<Mi>[+-]?[0-9]+)M)?"
    r"(?:(?P<S>[+-]?[0-9]+(?:\.[0-9]+)?)S)?)?\s*")


def iso_interval(text: str) -> dict[str, int]:
    """An ISO 8601 interval, as Debezium spells one (PostgreSQL's input takes it too)."""
    match = _ISO_INTERVAL.fullmatch(text)
    if match is None:
        raise ValueRefused("not an ISO-8601 interval (P1Y2M3DT4H5M6.78S)")
    years, months, weeks, days, hours, minutes = (int(match.group(name) or 0)
                                                  for name in ("Y", "Mo", "W", "D", "H", "Mi"))
    seconds = Decimal(match.group("S") or 0).scaleb(6)
    if seconds != seconds.to_integral_value():
        raise ValueRefused("interval finer than a microsecond")
    micros = (hours * 3600 + minutes * 60) * 1_000_000 + int(seconds)
    return interval_value(years * 12 + months, weeks * 7 + days, micros)


_NETMASK = re.compile(r"[0-9A-Fa-f.:]+(?:/[0-9]{1,3})?")  # no zone ids (fe80::1%eth0), no dotted masks


def network(text: str, cidr: bool) -> Any:
    """The interface (inet) or network (cidr) a text names, as PostgreSQL would accept it."""
    if not _NETMASK.fullmatch(text):  # Python would take both, PostgreSQL does not
        raise ValueRefused(f"not an {'cidr' if cidr else 'inet'} address")
    try:
        return ipaddress.ip_network(text, strict=True) if cidr else ipaddress.ip_interface(text)
    except ValueError:
        problem = "a cidr with bits set right of its mask" if cidr and "/" in text else \
            f"not an {'cidr' if cidr else 'inet'} address"
        raise ValueRefused(problem) from None


# --- the text forms a historical file holds -----------------------------------------------------

_INT_TEXT = re.compile(r"\s*([+-]?[0-9]+)\s*")
# A decimal comma is accepted where no point is present ("48500,50" from a Russian-locale export).
_NUMBER_TEXT = re.compile(r"\s*([+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)(?:[eE][+-]?[0-9]+)?)\s*")
_FLOAT_SPECIAL = {"nan": math.nan, "inf": math.inf, "+inf": math.inf, "-inf": -math.inf,
                  "infinity": math.inf, "+infinity": math.inf, "-infinity": -math.inf}
_BOOL_TEXT = {"t": True, "true": True, "y": True, "yes": True, "on": True, "1": True,
              "f": False, "false": False, "n": False, "no": False, "off": False, "0": False}
_DATE_TEXT = re.compile(r"\s*(?:(?P<y>[0-9]{4})-(?P<m>[0-9]{2})-(?P<d>[0-9]{2})"
                        r"|(?P<d2>[0-9]{2})\.(?P<m2>[0-9]{2})\.(?P<y2>[0-9]{4}))")
_TIME_TEXT = re.compile(r"(?:[Tt]|\s+)(?P<H>[0-9]{2}):(?P<M>[0-9]{2})(?::(?P<S>[0-9]{2})(?:[.,](?P<f>[0-9]+))?)?")
_ZONE_TEXT = re.compile(r"\s*(?:(?P<utc>Z|UTC)|(?P<sign>[+-])(?P<zh>[0-9]{2})(?::?(?P<zm>[0-9]{2})(?::?(?P<zs>[0-9]{2}))?)?)?\s*",
                        re.IGNORECASE)
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


def _int_from_text(text: str, bits: int) -> int:
    match = _INT_TEXT.fullmatch(text)
    if match is None:
        raise ValueRefused("not an integer")
    return integer_in_range(int(match.group(1)), bits)


def _number_text(text: str) -> str:
    match = _NUMBER_TEXT.fullmatch(text)
    if match is None:
        raise ValueRefused("not a number")
    return match.group(1).replace(",", ".")


def _numeric_from_text(text: str, precision: int, scale: int) -> Decimal:
    return refused_unless_numeric(_number_text(text), precision, scale)


_NON_FINITE_TEXT = {"nan": "NaN", "infinity": "Infinity", "+infinity": "Infinity", "-infinity": "-Infinity"}


def _numeric_text_from_text(text: str) -> str:
    """An unconstrained numeric as PostgreSQL prints it, as decimal_text keeps it."""
    special = _NON_FINITE_TEXT.get(text.strip().lower())
    return special if special is not None else decimal_text(Decimal(_number_text(text)))


def nearest_real(value: float) -> float:
    """The float Debezium sends for a real: the nearest float32, spelled shortest (as Java does)."""
    if not math.isfinite(value):
        return value
    try:
        single = struct.unpack("<f", struct.pack("<f", value))[0]
    except OverflowError:
        raise ValueRefused("out of range for real") from None
    for digits in range(1, 10):
        shortest = float(f"{single:.{digits}g}")
        if struct.unpack("<f", struct.pack("<f", shortest))[0] == single:
            return shortest
    return single


def _float_from_text(text: str, single: bool) -> float:
    special = _FLOAT_SPECIAL.get(text.strip().lower())
    if special is not None:
        return special
    value = float(_number_text(text))
    if math.isinf(value):  # 1e400: PostgreSQL refuses it rather than store Infinity
        raise ValueRefused("out of range for a floating-point number")
    return nearest_real(value) if single else value


def _bool_from_text(text: str) -> bool:
    value = _BOOL_TEXT.get(text.strip().lower())
    if value is None:
        raise ValueRefused("not a boolean (t/f, true/false, 1/0, yes/no, on/off)")
    return value


def _string_from_text(text: str, length: int | None, padded: bool) -> str:
    if "\x00" in text:
        raise ValueRefused("contains a NUL character, which PostgreSQL text cannot hold")
    if length is not None and len(text) > length:
        if text[length:].strip(" "):  # PostgreSQL cuts excess spaces only
            raise ValueRefused(f"longer than {length} characters")
        text = text[:length]
    return text.ljust(length) if padded and length is not None else text


def _no_constant(name: str) -> Any:
    raise ValueRefused("JSON has no NaN or Infinity")


def _json_from_text(text: str) -> str:
    json.loads(text, parse_constant=_no_constant)
    return text  # json keeps its text exactly as given


def _jsonb_out(node: Any) -> str:
    """PostgreSQL's jsonb output: keys by length then bytes, ', ' and ': ', numbers as numeric."""
    if node is None:
        return "null"
    if node is True:
        return "true"
    if node is False:
        return "false"
    if isinstance(node, Decimal):
        return format(abs(node) if node.is_zero() else node, "f")
    if isinstance(node, str):
        if "\x00" in node:
            raise ValueRefused("jsonb cannot hold a NUL character")
        return json.dumps(node, ensure_ascii=False)
    if isinstance(node, list):
        return "[" + ", ".join(_jsonb_out(item) for item in node) + "]"
    keys = sorted(node, key=lambda k: (len(k.encode()), k.encode()))
    return "{" + ", ".join(f"{_jsonb_out(k)}: {_jsonb_out(node[k])}" for k in keys) + "}"


def _jsonb_from_text(text: str) -> str:
    # dict() keeps the last of duplicate keys, as jsonb does.
    return _jsonb_out(json.loads(text, parse_float=Decimal, parse_int=Decimal, parse_constant=_no_constant))


def _date_from_text(text: str) -> date:
    match = _DATE_TEXT.fullmatch(text)
    if match is None:
        raise ValueRefused("not a date (YYYY-MM-DD or DD.MM.YYYY)")
    try:
        if match.group("y"):
            return date(int(match.group("y")), int(match.group("m")), int(match.group("d")))
        return date(int(match.group("y2")), int(match.group("m2")), int(match.group("d2")))
    except ValueError:
        raise ValueRefused("not a calendar date") from None


def _timestamp_text(text: str) -> tuple[datetime, timedelta | None]:
    """ISO 8601 ('T' or a space) or DD.MM.YYYY, then HH:MM[:SS[.ffffff]] and an optional offset."""
    match = _DATE_TEXT.match(text)
    if match is None:
        raise ValueRefused("not a timestamp (ISO 8601, e.g. 2024-01-15 10:30:00+05)")
    day = _date_from_text(match.group())
    position, micros = match.end(), 0
    clock = _TIME_TEXT.match(text, position)
    hours = minutes = seconds = 0
    if clock:
        hours, minutes = int(clock.group("H")), int(clock.group("M"))
        seconds = int(clock.group("S") or 0)
        digits = clock.group("f") or ""
        if len(digits) <= 6:
            micros = int(digits.ljust(6, "0"))
        else:  # PostgreSQL rounds extra digits half to even
            micros = int(Decimal(f"{digits[:6]}.{digits[6:]}").to_integral_value(ROUND_HALF_EVEN))
        position = clock.end()
    zone = _ZONE_TEXT.fullmatch(text, position)
    if zone is None:
        raise ValueRefused("not a timestamp (ISO 8601, e.g. 2024-01-15 10:30:00+05)")
    try:
        value = datetime(day.year, day.month, day.day, hours, minutes, seconds) + timedelta(microseconds=micros)
    except ValueError:
        raise ValueRefused("not a valid time of day") from None
    if zone.group("utc"):
        return value, timedelta(0)
    if zone.group("sign"):
        offset = timedelta(hours=int(zone.group("zh")), minutes=int(zone.group("zm") or 0),
                           seconds=int(zone.group("zs") or 0))
        return value, -offset if zone.group("sign") == "-" else offset
    return value, None


def round_timestamp(value: datetime, precision: int) -> datetime:
    """timestamp(p) as PostgreSQL stores it: rounded half away from zero on its 2000-01-01 epoch."""
    if precision >= 6:
        return value
    scale = 10 ** (6 - precision)
    micros = (value - _PG_EPOCH) // MICROSECOND
    if micros >= 0:
        micros = (micros + scale // 2) // scale * scale
    else:
        micros = -((-micros + scale // 2) // scale * scale)
    return _PG_EPOCH + timedelta(microseconds=micros)


def _timestamptz_from_text(text: str) -> datetime:
    value, offset = _timestamp_text(text)
    if offset is None:  # would silently take the host's zone
        raise ValueRefused("timestamptz without a UTC offset")
    return instant_in_range((value - offset).replace(tzinfo=timezone.utc))


def _timestamp_from_text(text: str, precision: int) -> datetime:
    value, offset = _timestamp_text(text)
    if offset is not None:  # PostgreSQL would silently drop it; the file means something else
        raise ValueRefused("a UTC offset given for a timestamp without time zone")
    return instant_in_range(round_timestamp(value.replace(tzinfo=timezone.utc), precision))


def _uuid_from_text(text: str) -> str:
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        raise ValueRefused("not a UUID") from None


_MONEY_TEXT = re.compile(r"\s*(?P<open>\()?\s*(?P<sign>[+-])?\s*\$?\s*(?P<units>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]*)"
                         r"(?:\.(?P<cents>[0-9]*))?\s*(?P<close>\))?\s*")


def money_from_text(text: str) -> Decimal:
    """money as PostgreSQL prints it in the C or en_US locale ($1,234.56, -$1,234.56), or plain."""
    match = _MONEY_TEXT.fullmatch(text)
    if match is None or bool(match.group("open")) != bool(match.group("close")) \
            or not (match.group("units") or match.group("cents")):
        raise ValueRefused("not a money amount (e.g. $1,234.56 or -1234.56)")
    negative = bool(match.group("open")) != (match.group("sign") == "-")
    units = match.group("units").replace(",", "") or "0"
    return money(f"{'-' if negative else ''}{units}.{match.group('cents') or '0'}")


def round_time(micros: int, precision: int) -> int:
    """time(p) as PostgreSQL stores it: rounded half up (AdjustTimeForTypmod)."""
    scale = 10 ** (6 - precision)
    return (micros + scale // 2) // scale * scale


def _time_from_text(text: str, precision: int) -> int:
    micros, offset = clock_and_offset(text)
    if offset is not None:  # PostgreSQL would silently drop it; the file means something else
        raise ValueRefused("a UTC offset given for a time without time zone")
    return round_time(micros, precision)


def _timetz_from_text(text: str, precision: int) -> int:
    micros, offset = clock_and_offset(text)
    if offset is None:  # would silently take the host's zone
        raise ValueRefused("timetz without a UTC offset")
    return utc_time_of_day(round_time(micros, precision), offset)


_PG_INTERVAL_UNIT = re.compile(r"\s*([+-]?[0-9]+)\s*(years?|mons?|months?|weeks?|days?)\b", re.IGNORECASE)
_PG_INTERVAL_CLOCK = re.compile(r"\s*([+-]?)([0-9]+):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?")


def _postgres_interval(text: str) -> dict[str, int]:
    """An interval as PostgreSQL prints it by default (IntervalStyle postgres):
    '1 year 2 mons -3 days +04:05:06.78'."""
    months = days = micros = 0
    position, seen = 0, False
    while unit := _PG_INTERVAL_UNIT.match(text, position):
        number, word = int(unit.group(1)), unit.group(2).lower()
        if word.startswith("y"):
            months += 12 * number
        elif word.startswith("mon"):
            months += number
        else:
            days += 7 * number if word.startswith("w") else number
        position, seen = unit.end(), True
    clock = _PG_INTERVAL_CLOCK.match(text, position)
    if clock:
        minutes, seconds = int(clock.group(3)), int(clock.group(4) or 0)
        if minutes > 59 or seconds > 59:
            raise ValueRefused("not a valid interval time part")
        micros = ((int(clock.group(2)) * 60 + minutes) * 60 + seconds) * 1_000_000 + _fraction_micros(clock.group(5) or "")
        micros = -micros if clock.group(1) == "-" else micros
        position, seen = clock.end(), True
    if not seen or text[position:].strip():
        raise ValueRefused("not an interval (e.g. 1 year 2 mons 3 days 04:05:06 or P1Y2M3DT4H5M6S)")
    return interval_value(months, days, micros)


def round_interval(value: dict[str, int], precision: int) -> dict[str, int]:
    """interval(p) as PostgreSQL stores it: seconds rounded half away from zero."""
    scale, micros = 10 ** (6 - precision), value["micros"]
    rounded = (abs(micros) + scale // 2) // scale * scale
    return interval_value(value["months"], value["days"], rounded if micros >= 0 else -rounded)


def _interval_from_text(text: str, precision: int) -> dict[str, int]:
    value = iso_interval(text) if text.strip()[:1] == "P" else _postgres_interval(text)
    return round_interval(value, precision)


def _bytea_from_text(text: str) -> bytes:
    """bytea's hex output (\\x0001ff, PostgreSQL's default) or its escape format (a\\000\\\\)."""
    if text.startswith("\\x"):
        try:
            return bytes.fromhex(text[2:])
        except ValueError:
            raise ValueRefused("not bytea hex (\\x followed by pairs of hex digits)") from None
    out, position = bytearray(), 0
    while position < len(text):
        char = text[position]
        if char != "\\":
            out += char.encode()
            position += 1
        elif text[position + 1:position + 2] == "\\":
            out.append(0x5C)
            position += 2
        elif re.fullmatch(r"[0-3][0-7]{2}", text[position + 1:position + 4]):
            out.append(int(text[position + 1:position + 4], 8))
            position += 4
        else:
            raise ValueRefused("not bytea (hex \\x... or escape format with \\ooo and \\\\)")
    return bytes(out)


def _pg_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """An address as PostgreSQL prints it: IPv6 compressed as RFC 5952 does, except that an embedded
    IPv4 address (::a.b.c.d, ::ffff:a.b.c.d) keeps its dotted quad (src/port/inet_net_ntop.c)."""
    if address.version == 6:
        words = [int.from_bytes(address.packed[i:i + 2], "big") for i in range(0, 16, 2)]
        leading = next((i for i, word in enumerate(words) if word), 8)
        if leading == 6 or (leading == 5 and words[5] == 0xFFFF):
            return ("::" if leading == 6 else "::ffff:") + str(ipaddress.IPv4Address(address.packed[12:]))
    return address.compressed


def _network_text(value: Any, cidr: bool) -> str:
    if cidr:
        return f"{_pg_address(value.network_address)}/{value.prefixlen}"
    text = _pg_address(value.ip)  # inet keeps the host bits; its netmask is printed unless full
    return text if value.network.prefixlen == value.max_prefixlen else f"{text}/{value.network.prefixlen}"


def inet_from_text(text: str, cidr: bool) -> str:
    """An inet or cidr in any spelling PostgreSQL's input accepts, as PostgreSQL prints it."""
    return _network_text(network(text.strip(), cidr), cidr)


_HEX2 = "[0-9a-fA-F]{2}"
_MAC6_TEXT = re.compile(r"\s*(?:" + "|".join([
    ":".join([_HEX2] * 6), "-".join([_HEX2] * 6), _HEX2 * 3 + ":" + _HEX2 * 3, _HEX2 * 3 + "-" + _HEX2 * 3,
    r"\.".join([_HEX2 * 2] * 3), "-".join([_HEX2 * 2] * 3), _HEX2 * 6]) + r")\s*")
_MAC8_TEXT = re.compile(r"\s*" + _HEX2 + r"(?:[:.-]?" + _HEX2 + r"){5}(?:(?:[:.-]?" + _HEX2 + r"){2})?\s*")


def macaddr_from_text(text: str, eight: bool) -> str:
    """Any spelling PostgreSQL's input accepts, as it prints it: lower-case pairs joined by colons."""
    if not (_MAC8_TEXT if eight else _MAC6_TEXT).fullmatch(text):
        raise ValueRefused(f"not a {'macaddr8' if eight else 'macaddr'}")
    digits = re.sub(r"[^0-9a-fA-F]", "", text).lower()
    if eight and len(digits) == 12:  # a 6-byte address becomes EUI-64 with FF:FE in the middle
        digits = digits[:6] + "fffe" + digits[6:]
    return ":".join(digits[i:i + 2] for i in range(0, len(digits), 2))


def _array_items(text: str) -> list[str | None]:
    """The elements of a one-dimensional array literal as PostgreSQL prints it ({1,"a b",NULL}),
    unquoted and unescaped; NULL unquoted is the null element."""
    body = text.strip()
    if not (body.startswith("{") and body.endswith("}")):
        raise ValueRefused("array with explicit bounds" if body.startswith("[") else "not an array literal ({...})")
    body = body[1:-1]
    if not body.strip():
        return []
    items, position = [], 0
    while True:
        position = _after_blanks(body, position)
        if body.startswith("{", position):
            raise ValueRefused("a multidimensional array value in a one-dimensional array column")
        if body.startswith('"', position):
            item, position = _quoted_item(body, position + 1)
        else:
            item, position = _bare_item(body, position)
        items.append(item)
        position = _after_blanks(body, position)
        if position == len(body):
            return items
        if body[position] != ",":
            raise ValueRefused("not a valid array literal")
        position += 1


def _after_blanks(body: str, position: int) -> int:
    while position < len(body) and body[position].isspace():
        position += 1
    return position


def _quoted_item(body: str, position: int) -> tuple[str, int]:
    chars = []
    while position < len(body):
        char = body[position]
        if char == '"':
            return "".join(chars), position + 1
        if char == "\\":
            position += 1
            if position == len(body):
                break
            char = body[position]
        chars.append(char)
        position += 1
    raise ValueRefused("not a valid array literal (unterminated quote)")


def _bare_item(body: str, position: int) -> tuple[str | None, int]:
    chars, escaped = [], False
    while position < len(body) and body[position] != ",":
        char = body[position]
        if char == "\\" and position + 1 < len(body):
            char, escaped = body[position + 1], True
            position += 1
        elif char in '{}"':
            raise ValueRefused("not a valid array literal")
        chars.append(char)
        position += 1
    item = "".join(chars).strip()
    if not item and not escaped:
        raise ValueRefused("not a valid array literal (empty element)")
    return (None if item.upper() == "NULL" and not escaped else item), position


def _array_from_text(text: str, element: str) -> list:
    parse = _text_parser(element)
    return [None if item is None else parse(item) for item in _array_items(text)]


@lru_cache(maxsize=None)
def _text_parser(declared: str) -> Callable[[str], Any]:
    column_type = parse_pg_type(declared)
    family, args = column_type.family, column_type.args
    parsers: dict[str, Callable[[str], Any]] = {
        "int": lambda t: _int_from_text(t, *args),
        "numeric": lambda t: _numeric_from_text(t, *args),
        "numeric_text": _numeric_text_from_text,
        "float4": lambda t: _float_from_text(t, True),
        "float8": lambda t: _float_from_text(t, False),
        "bool": _bool_from_text,
        "text": lambda t: _string_from_text(t, None, False),
        "varchar": lambda t: _string_from_text(t, args[0], False),
        "char": lambda t: _string_from_text(t, args[0], True),
        "date": lambda t: day_in_range(_date_from_text(t)),
        "timestamptz": _timestamptz_from_text,
        "timestamp": lambda t: _timestamp_from_text(t, *args),
        "uuid": _uuid_from_text,
        "json": _json_from_text,
        "jsonb": _jsonb_from_text,
        "money": money_from_text,
        "time": lambda t: _time_from_text(t, *args),
        "timetz": lambda t: _timetz_from_text(t, *args),
        "interval": lambda t: _interval_from_text(t, *args),
        "bytea": _bytea_from_text,
        "enum": lambda t: enum_label(t, *args),
        "inet": lambda t: inet_from_text(t, False),
        "cidr": lambda t: inet_from_text(t, True),
        "macaddr": lambda t: macaddr_from_text(t, False),
        "macaddr8": lambda t: macaddr_from_text(t, True),
        "array": lambda t: _array_from_text(t, *args),
    }
    parse = parsers[family]
    return refusing(declared, lambda t: parse(string(t)))



def text_parser(declared: str, dbms: str = "postgresql") -> Callable[[str], Any]:
    """The reader of a column's text form; ValueError if `declared` is not a PostgreSQL type."""
    if dbms != "postgresql":
        raise NotImplementedError(f"type {declared!r}: historical loads of MariaDB sources are not "
                                  "supported yet; load the file into a PostgreSQL-declared table or wait for it")
    return _text_parser(declared)
