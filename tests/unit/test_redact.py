"""Redaction of free text (streams/redact.py): identifiers in any spelling become placeholders."""
from __future__ import annotations

import re
import time

import pytest

from streams.redact import redact

IIN = "850101300124"
BAD_IIN = "850101300125"     # wrong check digit: still a 12-digit number
BIN = "071240500401"


def digits_of(text: str) -> str:
    return re.sub(r"\D", "", text)


@pytest.mark.parametrize(("text", "clear", "expected", "counts"), [
    # IIN, in Russian and Kazakh sentences, in every grouping people type
    ("Заявитель ИИН 850101300124 просит справку.", "850101300124",
     "Заявитель ИИН [IIN] просит справку.", {"IIN": 1}),
    ("Өтініш берушінің ЖСН: 850101 300 124.", "850101 300 124",
     "Өтініш берушінің ЖСН: [IIN].", {"IIN": 1}),
    ("ИИН 8501-0130-0124, проверьте.", "8501-0130-0124", "ИИН [IIN], проверьте.", {"IIN": 1}),
    ("ИИН 850 101 300 124", "850 101 300 124", "ИИН [IIN]", {"IIN": 1}),
    ("ИИН 850101 300124", "850101 300124", "ИИН [IIN]", {"IIN": 1}),
    ("ИИН850101300124", "850101300124", "ИИН[IIN]", {"IIN": 1}),
    ("(850101300124)", "850101300124", "([IIN])", {"IIN": 1}),
    # BIN
    ("ТОО «Ромашка», БИН 071240500401.", "071240500401", "ТОО «Ромашка», БИН [BIN].", {"BIN": 1}),
    ("ЖШС БСН 0712 4050 0401", "0712 4050 0401", "ЖШС БСН [BIN]", {"BIN": 1}),
    # a 12-digit number failing the check digit may be a mistyped IIN
    ("ИИН 850101300125 (опечатка)", "850101300125", "ИИН [ID_NUMBER] (опечатка)", {"ID_NUMBER": 1}),
    ("номер 123456789012", "123456789012", "номер [ID_NUMBER]", {"ID_NUMBER": 1}),
    # phones
    ("Тел. +7 (701) 234-56-78, звонить вечером", "234-56-78", "Тел. [PHONE], звонить вечером", {"PHONE": 1}),
    ("Байланыс: 8 701 234 56 78", "234 56 78", "Байланыс: [PHONE]", {"PHONE": 1}),
    ("тел 87012345678", "87012345678", "тел [PHONE]", {"PHONE": 1}),
    ("тел:+77012345678", "77012345678", "тел:[PHONE]", {"PHONE": 1}),
    ("моб. 8(701)2345678", "2345678", "моб. [PHONE]", {"PHONE": 1}),
    ("моб. 8-701-234-56-78", "234-56", "моб. [PHONE]", {"PHONE": 1}),
    ("раб. 7012345678", "7012345678", "раб. [PHONE]", {"PHONE": 1}),
    ("раб. (727) 123-45-67", "123-45-67", "раб. [PHONE]", {"PHONE": 1}),
    ("+7 701 2345678 или +7 702 345 67 89", "2345678", "[PHONE] или [PHONE]", {"PHONE": 2}),
    # e-mails
    ("Почта ivan.petrov@mail.kz, ответьте.", "ivan.petrov", "Почта [EMAIL], ответьте.", {"EMAIL": 1}),
    ("e-mail: Aliya_K+1@Gov.KZ", "Aliya", "e-mail: [EMAIL]", {"EMAIL": 1}),
    ("ivan.petrov [at] mail.kz немесе ivan(at)mail.kz", "ivan", "[EMAIL] немесе [EMAIL]", {"EMAIL": 2}),
    ("почта 850101300124@mail.kz", "850101300124", "почта [EMAIL]", {"EMAIL": 1}),
    # passports and ID cards
    ("Паспорт N 1234 5678 выдан МВД", "1234 5678", "Паспорт [PASSPORT] выдан МВД", {"PASSPORT": 1}),
    ("паспорт N12345678", "12345678", "паспорт [PASSPORT]", {"PASSPORT": 1}),
    ("паспорт Н-12345678 (кириллица)", "12345678", "паспорт [PASSPORT] (кириллица)", {"PASSPORT": 1}),
    ("жеке куәлік 012345678", "012345678", "жеке куәлік [ID_CARD]", {"ID_CARD": 1}),
    ("удостоверение №012345678 от 01.01.2020", "012345678",
     "удостоверение №[ID_CARD] от 01.01.2020", {"ID_CARD": 1}),
])
def test_identifier_redacted(text: str, clear: str, expected: str, counts: dict) -> None:
    redacted, found = redact(text)
    assert redacted == expected
    assert found == counts
    assert clear not in redacted


def test_every_type_in_one_text() -> None:
    text = ("Заявитель (ИИН 850101 300 124, паспорт N 1234 5678, уд. 012345678) от ТОО БИН 071240500401 "
            "просит перезвонить на +7 (701) 234-56-78 или написать на ivan.petrov@mail.kz; "
            "номер 850101300125 указан с ошибкой.")
    redacted, counts = redact(text)
    assert counts == {"IIN": 1, "PASSPORT": 1, "ID_CARD": 1, "BIN": 1, "PHONE": 1, "EMAIL": 1, "ID_NUMBER": 1}
    assert digits_of(redacted) == ""
    assert "@" not in redacted
    for placeholder in ("[IIN]", "[BIN]", "[PHONE]", "[EMAIL]", "[PASSPORT]", "[ID_CARD]", "[ID_NUMBER]"):
        assert placeholder in redacted
    # Counts, never values.
    assert all(isinstance(v, int) for v in counts.values())


@pytest.mark.parametrize("text", [
    "Сумма выплаты 12 500,00 тенге.",
    "Төлем сомасы 48 500,50 теңге",
    "Выплата за 2024 год",
    "Дата обращения 01.01.2024, повторно 15.03.2024.",
    "Сумма 125 000 000 тенге",
    "Сумма 1 250 000 тенге, 3 500 000,00 тенге",
    "заявление № 4521 от 12.05.2023",
    "дом 10, кв. 5, индекс 050000",
    "время 12:30:45, 2024-01-15",
    "Прошу пересчитать пенсию за январь.",
    "",
])
def test_ordinary_numbers_left_alone(text: str) -> None:
    assert redact(text) == (text, {})


def test_date_next_to_a_spaced_iin() -> None:
    # The year joins the IIN's digit groups; the IIN is still found, the year stays.
    redacted, counts = redact("01.01.2024 850101 300 124")
    assert redacted == "01.01.2024 [IIN]"
    assert counts == {"IIN": 1}


def test_twelve_digits_never_left_in_clear() -> None:
    for text in ("a 123456789012 b", "1234 5678 9012", "12-34-56-78-90-12", "x123456789012y"):
        redacted, _ = redact(text)
        assert not re.search(r"\d{12}", digits_of(redacted)), text
    # Deliberate bias: a 12-digit amount grouped in thousands is redacted as well.
    assert redact("125 000 000 000 тенге") == ("[ID_NUMBER] тенге", {"ID_NUMBER": 1})


def test_longer_digit_runs_are_not_identifiers() -> None:
    assert redact("счет 12345678901234567890") == ("счет 12345678901234567890", {})


def test_full_width_iin_is_redacted() -> None:
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in IIN)
    assert redact(f"ИИН {full_width}") == ("ИИН [IIN]", {"IIN": 1})


def test_placeholders_survive_a_second_pass() -> None:
    once, _ = redact("ИИН 850101300124, тел. 87012345678")
    assert redact(once) == (once, {})


@pytest.mark.parametrize("unit", ["12 ", "1 ", "8 (7", "a.", "a@", "N 1", "a [at] ", "7-", "1" * 13 + " "])
def test_linear_time_on_adversarial_input(unit: str) -> None:
    # Four times the input must take about four times as long (no catastrophic backtracking);
    # the slack absorbs a busy machine.
    def seconds(n: int) -> float:
        # The best of three: one run can meet a garbage collection of the whole test session.
        text, best = unit * n, float("inf")
        for _ in range(3):
            start = time.perf_counter()
            redact(text)
            best = min(best, time.perf_counter() - start)
        return best

    small, large = seconds(5_000), seconds(20_000)
    assert large < 0.5
    assert large < 12 * small + 0.02
