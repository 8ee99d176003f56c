"""`qoima pd236 test-act`: the testing act of PD236 §11.

Before production, ten successful responses with a security token are obtained in the test
environment (of the e-government gateway and the state service) and recorded in a testing act
attached to the integration request. This sends ten requests, each with its own token, to the
configured test endpoint (QOIMA_PD236_TEST_URL; the local stand-in by default), requires ten
accepted answers, and writes the act as a PDF a person can sign: the requests, the answers,
the token ids and the times.

The requests are test access events of a test table: they carry no personal data at all.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from governance.pd236 import client
from governance.pd236.token import ALGORITHM, MODE, TokenIssuer

REQUESTS = 10
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")   # Debian's fonts-dejavu-core: Cyrillic and Kazakh letters
TEST_SUBJECT = "qoima (PD236 §11 test)"


class TestActError(RuntimeError):
    """The act cannot be made: the message says why and what to do."""


@dataclass(frozen=True)
class Exchange:
    number: int
    sent: datetime
    request_id: str
    jti: str
    token_expires: datetime
    status: int
    accepted: bool
    receipt: str
    error: str
    elapsed_ms: float


def _test_event(now: datetime) -> dict:
    start = now.replace(second=0, microsecond=0)
    return {"provider": "pd236_test", "organization": "PD236 §11 test", "information_system": TEST_SUBJECT,
            "table": "test.access_protocol", "path": "cdc", "categories": ["identifiers"], "rows": 1, "subjects": 1,
            "subjects_exact": True, "legal_basis": "PD236 §11: testing in the test environment",
            "purpose": "testing act", "key_id": "test", "interval_start": start, "interval_end": start,
            "first_read": now, "last_read": now}


def exchange(endpoint: str, issuer: TokenIssuer, count: int = REQUESTS,
             send: Callable[..., client.Reply] = client.send) -> list[Exchange]:
    """`count` requests, one token each, in order; every answer recorded, success or not."""
    done = []
    for number in range(1, count + 1):
        sent = datetime.now(timezone.utc)
        request_id = f"test-act-{uuid.uuid4().hex[:20]}"
        token = issuer.token(subject=TEST_SUBJECT)
        reply = send(endpoint, client.message(request_id, _test_event(sent)), token, request_id)
        elapsed = (datetime.now(timezone.utc) - sent).total_seconds() * 1000
        done.append(Exchange(number, sent, request_id, token.jti,
                             datetime.fromtimestamp(token.expires, timezone.utc), reply.status,
                             reply.accepted and not reply.duplicate, reply.receipt, reply.error, elapsed))
    return done


def _time(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def write_pdf(path: Path, exchanges: list[Exchange], endpoint: str, issuer: TokenIssuer) -> Path:
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    regular, bold = FONT_DIR / "DejaVuSans.ttf", FONT_DIR / "DejaVuSans-Bold.ttf"
    if not regular.is_file() or not bold.is_file():
        raise TestActError(f"the act's font {regular} is missing; install Debian's fonts-dejavu-core "
                           "(infra/setup.sh does)")
    ok = sum(e.accepted for e in exchanges)
    pdf = FPDF(orientation="L", format="A4")
    pdf.set_title("PD236 testing act")
    pdf.set_creator("Qoima")
    pdf.add_font("DejaVu", "", str(regular))
    pdf.add_font("DejaVu", "B", str(bold))
    pdf.set_auto_page_break(True, margin=12)
    pdf.add_page()

    def line(text: str, size: float = 9.5, style: str = "", gap: float = 1.0) -> None:
        pdf.set_font("DejaVu", style, size)
        pdf.multi_cell(0, size * 0.5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(gap)

    line("АКТ ТЕСТИРОВАНИЯ", 14, "B", 0)
    line("интеграции с государственным сервисом контроля доступа к персональным данным", 11, "B", 0)
    line("Testing act: integration with the state service for control of access to personal data", 11, "B", 3)
    parts = urlsplit(endpoint)
    where = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "") + parts.path
    facts = [
        ("Основание / Basis", "Правила интеграции с государственным сервисом контроля доступа к персональным данным, "
                              "приказ № 236/НҚ от 8 июля 2022 г., п. 11 (PD236 §11)"),
        ("Информационная система / Information system", "Qoima (change data capture into the unified data warehouse)"),
        ("Оператор (издатель токена) / Operator (token issuer)", issuer.issuer),
        ("Способ / Access mode", f"{MODE}: запрос/ответ в режиме протоколирования (PD236 п. 7, пп. 4)"),
        ("Тестовая среда / Test endpoint", where),
        ("Токен безопасности / Security token", f"JWT, {ALGORITHM}, key id {issuer.kid}, audience "
                                                f"{issuer.audience!r}, one token per request"),
        ("Начало / Started (UTC)", _time(exchanges[0].sent) if exchanges else "-"),
        ("Окончание / Finished (UTC)", _time(exchanges[-1].sent) if exchanges else "-"),
    ]
    for label, value in facts:
        line(f"{label}: {value}", 9)
    pdf.ln(2)
    pdf.set_font("DejaVu", "", 7)
    widths = (8, 36, 48, 60, 36, 12, 20, 39)
    with pdf.table(col_widths=widths, text_align="LEFT", line_height=4.2, first_row_as_headings=True) as table:
        table.row(["№", "Отправлен / Sent (UTC)", "Запрос / Request id", "Токен / Token id (jti)",
                   "Токен до / Expires (UTC)", "HTTP", "Результат / Result", "Квитанция / Receipt"])
        for e in exchanges:
            table.row([str(e.number), _time(e.sent), e.request_id, e.jti, _time(e.token_expires), str(e.status or "-"),
                       "успешно / success" if e.accepted else f"ошибка / failed: {e.error}", e.receipt or "-"])
    pdf.ln(3)
    line(f"Итог / Result: {ok} из {len(exchanges)} успешных ответов с токеном безопасности "
         f"({ok} of {len(exchanges)} successful responses with a security token).", 10, "B", 6)
    for side in ("От оператора / For the operator", "От оператора «электронного правительства» (ШЭП) и "
                                                  "государственного сервиса / For the e-government gateway and the "
                                                  "state service"):
        line(f"{side}:", 9.5, "", 4)
        line("____________________________   ____________________________   ______________   М.П.", 9.5, "", 0)
        line("(должность / position)                 (Ф.И.О. / name)                             "
             "(подпись / signature)", 7, "", 6)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


def test_act(endpoint: str, issuer: TokenIssuer, path: Path,
             send: Callable[..., client.Reply] = client.send) -> tuple[list[Exchange], Path | None]:
    """The ten exchanges, and the act's path when all ten succeeded (no act otherwise)."""
    exchanges = exchange(endpoint, issuer, send=send)
    if sum(e.accepted for e in exchanges) < REQUESTS:
        return exchanges, None
    return exchanges, write_pdf(path, exchanges, endpoint, issuer)
