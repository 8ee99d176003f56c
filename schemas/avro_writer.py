"""A record schema compiled into one Python function that writes its Avro binary body.

Why: fastavro's writer is generic; it resolves each union by testing the value against every
branch, and each clean record has a dozen ["null", X] fields. That was about 16% of a
processor worker (bench/processor.py, docs/benchmarks.md). A function written for one schema
does the same work as straight-line code: a null-union is one `is None` test.

fastavro stays the authority: the compiled function takes only values whose Python class is
exactly what the field's type holds (an `int` for a long, a `str` for a string, ...) and raises
on anything else, and the caller (schemas/avro_codec.py) then writes the record with fastavro,
which either converts the value as it always did or refuses it with its own error. Logical
types go through fastavro's own conversions (`fastavro.write.LOGICAL_WRITERS`), so a datetime
or a Decimal becomes the same number fastavro would write. A schema with a type compiled here
does not know (enums, fixed, maps, nested or named records, unions other than ["null", X])
is not compiled at all: `compile_writer` returns None and fastavro writes it.
"""
from __future__ import annotations

import struct
from typing import Any, Callable

from fastavro.write import LOGICAL_WRITERS

_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1
_INT_MIN, _INT_MAX = -(1 << 31), (1 << 31) - 1


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


# Zigzag varints of -64..63 (one byte), and every 14-bit group of a longer one with its two
# continuation bits set: a 62-bit version takes five steps instead of nine.
_SMALL = tuple(_varint((n << 1) ^ (n >> 63)) for n in range(-64, 64))
_PAIRS = tuple(bytes(((n & 0x7F) | 0x80, ((n >> 7) & 0x7F) | 0x80)) for n in range(1 << 14))


def write_long(n: int) -> bytes:
    """Avro's zigzag varint of a long; OverflowError outside 64 bits."""
    if -64 <= n < 64:
        return _SMALL[n + 64]
    if not _LONG_MIN <= n <= _LONG_MAX:
        raise OverflowError("value out of range for an Avro long")
    n = (n << 1) ^ (n >> 63)
    parts = []
    while n >= 1 << 14:
        parts.append(_PAIRS[n & 0x3FFF])
        n >>= 14
    parts.append(_varint(n))
    return b"".join(parts)


class _Source:
    """The function's text, line by line, and the objects it refers to by name."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {"write_long": write_long, "_SMALL": _SMALL, "pack_double": struct.Struct("<d").pack,
                                      "pack_float": struct.Struct("<f").pack, "_INT_MIN": _INT_MIN, "_INT_MAX": _INT_MAX}
        self._count = 0

    def fresh(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}{self._count}"

    def refer(self, obj: Any, prefix: str) -> str:
        name = self.fresh(prefix)
        self.names[name] = obj
        return name

    def line(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)


class Unsupported(Exception):
    """A type this module does not compile (fastavro writes the schema instead)."""


def _write(src: _Source, avro_type: Any, var: str, depth: int) -> None:
    """Lines that append `var`, of `avro_type`, to `out`, raising on a value not exactly of it."""
    if isinstance(avro_type, dict):
        logical = avro_type.get("logicalType")
        base = avro_type.get("type")
        if logical is not None:
            # fastavro's own conversion (a datetime to its number, a Decimal to its bytes); a
            # logical type it does not know is written as its base type, as fastavro does.
            prepare = LOGICAL_WRITERS.get(f"{base}-{logical}")
            if prepare is not None:
                src.line(depth, f"{var} = {src.refer(prepare, 'prepare')}({var}, {src.refer(avro_type, 'schema')})")
            _write(src, base, var, depth)
            return
        if base == "array":
            item = src.fresh("item")
            src.line(depth, f"if {var}.__class__ is not list: raise TypeError")
            src.line(depth, f"if {var}:")
            src.line(depth + 1, f"out.append(write_long(len({var})))")
            src.line(depth + 1, f"for {item} in {var}:")
            _write(src, avro_type["items"], item, depth + 2)
            src.line(depth, "out.append(b'\\x00')")
            return
        if base in ("long", "int", "string", "bytes", "boolean", "double", "float"):
            _write(src, base, var, depth)
            return
        raise Unsupported(f"type {base!r}")
    if isinstance(avro_type, list):
        if len(avro_type) != 2 or avro_type[0] != "null" or avro_type[1] == "null":
            raise Unsupported("a union other than [null, X]")
        src.line(depth, f"if {var} is None:")
        src.line(depth + 1, "out.append(b'\\x00')")
        src.line(depth, "else:")
        src.line(depth + 1, "out.append(b'\\x02')")
        _write(src, avro_type[1], var, depth + 1)
        return
    if avro_type in ("long", "int"):
        src.line(depth, f"if {var}.__class__ is not int: raise TypeError")
        if avro_type == "int":
            src.line(depth, f"if not _INT_MIN <= {var} <= _INT_MAX: raise OverflowError")
        src.line(depth, f"out.append(_SMALL[{var} + 64] if -64 <= {var} < 64 else write_long({var}))")
    elif avro_type == "string":
        encoded = src.fresh("utf8")
        src.line(depth, f"if {var}.__class__ is not str: raise TypeError")
        src.line(depth, f"{encoded} = {var}.encode()")
        src.line(depth, f"out.append(write_long(len({encoded})))")
        src.line(depth, f"out.append({encoded})")
    elif avro_type == "bytes":
        src.line(depth, f"if {var}.__class__ is not bytes: raise TypeError")
        src.line(depth, f"out.append(write_long(len({var})))")
        src.line(depth, f"out.append({var})")
    elif avro_type == "boolean":
        src.line(depth, f"if {var} is True: out.append(b'\\x01')")
        src.line(depth, f"elif {var} is False: out.append(b'\\x00')")
        src.line(depth, "else: raise TypeError")
    elif avro_type in ("double", "float"):
        src.line(depth, f"if {var}.__class__ is not float: raise TypeError")
        src.line(depth, f"out.append(pack_{avro_type}({var}))")
    else:
        raise Unsupported(f"type {avro_type!r}")


def compile_writer(schema: dict) -> Callable[[bytes, dict], bytes] | None:
    """`write(header, record)`: `header` then the Avro binary body of `record`, for a record
    schema of the types above; None for any other schema."""
    if schema.get("type") != "record":
        return None
    src = _Source()
    src.line(0, "def write(header, record):")
    src.line(1, "out = [header]")
    try:
        for field in schema["fields"]:
            var = src.fresh("value")
            src.line(1, f"{var} = record[{field['name']!r}]")
            _write(src, field["type"], var, 1)
    except Unsupported:
        return None
    src.line(1, "return b''.join(out)")
    namespace = dict(src.names)
    exec(compile("\n".join(src.lines), f"<avro writer {schema.get('name')}>", "exec"), namespace)  # noqa: S102
    return namespace["write"]
