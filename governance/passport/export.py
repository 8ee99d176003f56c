"""The passport as a person or a program reads it: CSV (the structure description, exactly
DM385 Appendix 1's columns), JSON (everything) and HTML (everything, for a person)."""
from __future__ import annotations

import csv
import io
import json
from html import escape

from governance.passport.document import STRUCTURE_COLUMNS, WAREHOUSE_COLUMNS, PassportDocument

FORMATS = ("csv", "json", "html")


def to_csv(document: PassportDocument) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=STRUCTURE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(document.structure)
    return out.getvalue()


def to_json(document: PassportDocument, version: int | None = None) -> str:
    body = document.as_json()
    if version is not None:
        body = {"version": version, **body}
    return json.dumps(body, indent=2, ensure_ascii=False, default=str) + "\n"


def _cell(value) -> str:
    if isinstance(value, dict):
        return "<br>".join(f"{escape(str(k))}: {_cell(v)}" for k, v in value.items())
    if isinstance(value, list):
        return escape(", ".join(str(v) for v in value))
    return escape("" if value is None else str(value))


def _facts(title: str, facts: dict) -> list[str]:
    lines = [f"<h2>{escape(title)}</h2>", "<table>"]
    lines += [f"<tr><th>{escape(name)}</th><td>{_cell(value)}</td></tr>" for name, value in facts.items()]
    return lines + ["</table>"]


def _rows(title: str, columns: tuple[str, ...], rows: list[dict]) -> list[str]:
    lines = [f"<h2>{escape(title)}</h2>", "<table>", "<tr>" + "".join(f"<th>{escape(c)}</th>" for c in columns)
             + "</tr>"]
    lines += ["<tr>" + "".join(f"<td>{_cell(row[c])}</td>" for c in columns) + "</tr>" for row in rows]
    return lines + ["</table>"]


def to_html(document: PassportDocument, version: int | None = None) -> str:
    title = f"Data passport: {document.general['information_system']}"
    lines = ["<!DOCTYPE html>", '<html lang="ru"><head><meta charset="utf-8">', f"<title>{escape(title)}</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
             "th,td{border:1px solid #999;padding:3px 6px;text-align:left;vertical-align:top;font-size:90%}"
             "th{background:#eee}</style></head><body>",
             f"<h1>{escape(title)}</h1>",
             f"<p>Provider <b>{escape(document.provider)}</b>"
             + (f", version {version}" if version is not None else "")
             + ("" if document.declared else ". <b>The regulation declares no passport block</b>: only what Qoima "
                "derives is shown; add <code>passport:</code> (docs/passport.md)") + "</p>"]
    lines += _facts("General part (DM385 Appendix 1 §1)", document.general)
    lines += _facts("Life cycle (Appendix 1 §2)", document.life_cycle)
    lines += _facts("Questionnaire (R394 Appendix 1)", document.questionnaire)
    lines += _rows("Structure description (Appendix 1)", STRUCTURE_COLUMNS, document.structure)
    lines += _rows("Warehouse side: what Qoima does to each column", WAREHOUSE_COLUMNS, document.warehouse)
    return "\n".join(lines + ["</body></html>"]) + "\n"


def render(document: PassportDocument, fmt: str, version: int | None = None) -> str:
    if fmt == "csv":
        return to_csv(document)
    return to_json(document, version) if fmt == "json" else to_html(document, version)
