"""Historical data files (R394 §21): what a provider hands over before, or instead of, CDC.

Historical data arrive as files, and the operator converts formats and encodings. Two formats:

- CSV with a header row naming the source columns; UTF-8, CP1251 or UTF-16 (UTF-32 too), with
  or without a byte-order mark; comma, semicolon or tab separated. An empty field is NULL (the
  `csv` module cannot tell `""` from nothing, nor can most exports).
- Parquet, read batch by batch with pyarrow.

Encoding: a byte-order mark decides (UTF-8, UTF-16 LE/BE, UTF-32). Without one, zero bytes in
every other position mean UTF-16 (the header is ASCII, so half its bytes are 0x00). Otherwise
the whole file is checked as strict UTF-8 and, failing that, read as CP1251. That order works
because CP1251 encodes Cyrillic letters as single bytes 0xC0-0xFF, and in UTF-8 such a byte is a
lead byte that must be followed by a continuation byte 0x80-0xBF; two Cyrillic letters in a row
(any Russian or Kazakh word) are therefore invalid UTF-8, so a CP1251 file practically never
passes as UTF-8. The reverse order would not work: nearly every byte sequence is valid CP1251.
A file that fails UTF-8 but is mostly well-formed UTF-8 (a damaged UTF-8 file) is refused rather
than read as CP1251, which would turn every name into different text and so into different
pseudonyms.

Delimiter: the one of `,` `;` and tab that occurs most in the header line. Header names are
column identifiers that never contain a delimiter, so the count is exact, where csv.Sniffer
guesses from character frequencies across rows and can pick a character common in the data.

Values: CSV gives text, which the router reads with each column's parser from `connectors/pg_text.py`. Parquet
gives typed values (int, Decimal, date, datetime, str, ...), passed on as they are: a typed
value needs no formatting and re-parsing, and a float or a timestamp cannot lose digits on the
way; a Parquet string column still goes through `from_text`. Both end in the same Debezium form.

Nothing here logs, prints or raises with a value from the file: errors name the file, the line
or row number and the problem.
"""
from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

DELIMITERS = ",;\t"
PARQUET_BATCH_ROWS = 4096
_PARQUET_MAGIC = b"PAR1"
_SCAN_CHUNK = 1 << 20
# Two-byte UTF-8 sequences (Cyrillic in UTF-8) versus two CP1251 letters in a row.
_UTF8_PAIR = re.compile(rb"[\xc2-\xdf][\x80-\xbf]")
_CP1251_PAIR = re.compile(rb"[\xc0-\xff]{2}")
_CSV_FIELD_LIMIT = 64 << 20  # json columns may be large; the default 128 KiB would stop the load


class HistoryError(ValueError):
    """A history load cannot go on; the message says what is wrong and what to do, never a value."""


@dataclass
class HistoryFile:
    """A history file, its detected format and header; `records()` reads it once, front to back."""

    path: Path
    format: str                                  # csv | parquet
    columns: list[str]                           # header names, stripped and lower-cased
    encoding: str | None = None                  # csv only
    delimiter: str | None = None                 # csv only
    total: int = 0                               # progress total, in `unit`
    unit: str = "rows"                           # "B" (bytes read) for csv, "rows" for parquet
    position: int = field(default=0, init=False)  # progress so far, in `unit`

    def records(self) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
        """(row number from 1, values by column, None), or (number, None, problem) for a CSV line
        whose field count differs from the header's: its values may sit under the wrong columns
        (a clear name under `status`), so it is never loaded."""
        if self.format == "parquet":
            return self._parquet_records()
        return self._csv_records()

    def _csv_records(self) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
        csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
        width = len(self.columns)
        with open(self.path, "rb") as binary, io.TextIOWrapper(binary, encoding=self.encoding, newline="") as text:
            reader = csv.reader(text, delimiter=self.delimiter)
            number = 0
            try:
                next(reader, None)  # the header, already read by open_history
                for fields in reader:
                    self.position = binary.tell()
                    if not fields or fields == [""]:
                        continue  # blank line
                    number += 1
                    if len(fields) > width and not any(fields[width:]):
                        fields = fields[:width]  # trailing delimiters
                    if len(fields) != width:
                        yield number, None, (f"line {reader.line_num} has {len(fields)} fields, the header {width}; "
                                             "a delimiter or quote inside a value is not escaped")
                        continue
                    yield number, {name: (value if value != "" else None) for name, value in zip(self.columns, fields)}, None
            except csv.Error as exc:
                raise HistoryError(f"{self.path.name}: line {reader.line_num}: not valid CSV ({exc})") from None
            except UnicodeDecodeError as exc:
                raise HistoryError(f"{self.path.name}: near byte {binary.tell()}: not valid {self.encoding} "
                                   f"({exc.reason}); convert the file") from None
            self.position = self.total

    def _parquet_records(self) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        number = 0
        try:
            with pq.ParquetFile(self.path) as parquet:
                for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
                    columns = []
                    for column in batch.columns:
                        if pa.types.is_timestamp(column.type) and column.type.unit == "ns":
                            # PostgreSQL keeps microseconds (the nanoseconds are cut); without this
                            # pyarrow would hand out pandas Timestamps.
                            column = column.cast(pa.timestamp("us", column.type.tz), safe=False)
                        columns.append(column.to_pylist())
                    for values in zip(*columns):
                        number += 1
                        yield number, dict(zip(self.columns, values)), None
                    self.position = number
        except (pa.ArrowException, OSError) as exc:
            raise HistoryError(f"{self.path.name}: after row {number}: cannot read Parquet ({type(exc).__name__})") from None


def _normalize_header(names: list[str], path: Path) -> list[str]:
    columns = [name.strip().strip("\ufeff").strip().lower() for name in names]
    while columns and columns[-1] == "":
        columns.pop()  # a trailing delimiter
    if not columns:
        raise HistoryError(f"{path.name}: the header row is empty; the first line must name the columns")
    unnamed = [str(i + 1) for i, name in enumerate(columns) if not name]
    if unnamed:
        raise HistoryError(f"{path.name}: header column(s) {', '.join(unnamed)} have no name; the first line "
                           "must be a header naming the columns")
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise HistoryError(f"{path.name}: the header names column(s) more than once: {', '.join(duplicates)}")
    return columns


def detect_encoding(path: Path) -> str:
    """The Python codec to read a CSV file with; see the module docstring for the order of tests."""
    with open(path, "rb") as handle:
        head = handle.read(4)
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
            return "utf-32"
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        handle.seek(0)
        sample = handle.read(64 * 1024)
        if b"\x00" in sample:
            even, odd = sample[0::2].count(0), sample[1::2].count(0)
            if odd >= len(sample) // 8 and odd > 4 * even:
                return "utf-16-le"
            if even >= len(sample) // 8 and even > 4 * odd:
                return "utf-16-be"
            raise HistoryError(f"{path.name}: holds zero bytes but is not UTF-16 text: not a CSV file "
                               "(Parquet files start with PAR1)")
        handle.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        utf8_error, offset, undefined_1251 = None, 0, False
        utf8_pairs = cp1251_pairs = 0
        for chunk in iter(lambda: handle.read(_SCAN_CHUNK), b""):
            if utf8_error is None:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    utf8_error = offset + exc.start
            utf8_pairs += len(_UTF8_PAIR.findall(chunk))
            cp1251_pairs += len(_CP1251_PAIR.findall(chunk))
            undefined_1251 = undefined_1251 or b"\x98" in chunk  # the one byte CP1251 leaves undefined
            offset += len(chunk)
        if utf8_error is None:
            try:
                decoder.decode(b"", final=True)
                return "utf-8"
            except UnicodeDecodeError:
                utf8_error = offset
    if utf8_pairs > cp1251_pairs:
        raise HistoryError(f"{path.name}: looks like UTF-8 but is not valid UTF-8 (first bad byte at offset "
                           f"{utf8_error}); repair or re-export it, or convert it to one encoding")
    if undefined_1251:
        raise HistoryError(f"{path.name}: cannot detect its encoding: neither UTF-8 nor CP1251 (and no byte-order "
                           "mark for UTF-16); convert it to UTF-8")
    return "cp1251"


def _delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def open_history(path: Path | str) -> HistoryFile:
    """Detect the file's format (Parquet by its magic bytes, else CSV), encoding, delimiter and header."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
        size = path.stat().st_size
    except OSError as exc:
        raise HistoryError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    if magic == _PARQUET_MAGIC:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            with pq.ParquetFile(path) as parquet:
                names, rows = parquet.schema_arrow.names, parquet.metadata.num_rows
        except (pa.ArrowException, OSError) as exc:
            raise HistoryError(f"{path.name}: starts like Parquet but cannot be read as Parquet "
                               f"({type(exc).__name__})") from None
        return HistoryFile(path, "parquet", _normalize_header(names, path), total=rows, unit="rows")
    if size == 0:
        raise HistoryError(f"{path.name}: the file is empty; the first line must name the columns")
    encoding = detect_encoding(path)
    with open(path, encoding=encoding, newline="") as handle:
        header_line = handle.readline()
    delimiter = _delimiter(header_line)
    header = next(csv.reader([header_line], delimiter=delimiter), [])
    return HistoryFile(path, "csv", _normalize_header(header, path), encoding=encoding, delimiter=delimiter,
                       total=size, unit="B")


def read_rows(path: Path | str) -> Iterator[dict[str, Any]]:
    """The rows of a history file as {column: value}: text (None for an empty field) from CSV,
    typed values from Parquet. A CSV line with the wrong number of fields stops with HistoryError."""
    for number, row, problem in open_history(path).records():
        if problem is not None:
            raise HistoryError(f"{Path(path).name}: row {number}: {problem}")
        yield row
