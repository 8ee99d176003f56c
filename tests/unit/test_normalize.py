"""Normalizers (streams/normalize.py): one identifier, however it is spelled, one canonical form."""
from __future__ import annotations

import unicodedata

import pytest

from streams import normalize

VALID_IIN = "850101300124"   # check digit worked by hand in test_identifiers.py
VALID_BIN = "071240500401"

# --- phone ----------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", [
    "+7 701 234 56 78",
    "87012345678",
    "+77012345678",
    "8(701)234-56-78",
    "7012345678",
    "8 701 234 56 78",
    "+7 (701) 234-56-78",
    "+7.701.234.56.78",
    "  +7 701 234 56 78  ",
])
def test_phone_spellings_give_one_e164(spelling: str) -> None:
    assert normalize.phone(spelling) == "+77012345678"


@pytest.mark.parametrize("value", [
    "12345",                     # too short
    "+7 (7O1) 234 56 78",        # Latin letter O instead of zero
    "+7 (7О1) 234 56 78",        # Cyrillic letter О instead of zero
    "+7 701 234 56 789",         # 12 digits
    "+7 916 123 45 67",          # Russian mobile: +7 but not 7xx after the country code
    "8 800 555 35 35",           # Russian toll-free
    "+1 701 234 5678",           # 11 digits, not starting with 7 or 8
    "6012345678",                # 10 digits, but not a 7xx number once +7 is added
    "tel: 7012345678",           # letters around the number
    "+7 701 234 56 78 ext 1",
    "",
    "   ",
])
def test_not_a_kazakh_number_gives_none(value: str) -> None:
    assert normalize.phone(value) is None


def test_landline_behaviour_is_documented() -> None:
    # The code only requires the digit after the country code to be 7, which every Kazakh
    # number has (mobile 70x/747/77x, landline 7xx area codes such as Almaty 727). So an
    # Almaty landline is accepted and normalized, even though the docstring says "mobile".
    assert normalize.phone("+7 727 123 45 67") == "+77271234567"
    assert normalize.phone("8 (727) 123-45-67") == "+77271234567"
    # ...whereas a Russian number sharing the +7 country code is not.
    assert normalize.phone("+7 495 123 45 67") is None


def test_distinct_numbers_stay_distinct() -> None:
    assert normalize.phone("+7 701 234 56 78") != normalize.phone("+7 701 234 56 79")


# --- IIN / BIN ------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", [
    VALID_IIN, " 850101300124 ", "850101 300124", "8501-0130-0124", "850 101 300 124",
    "850-101-300-124",
])
def test_iin_spaces_and_dashes(spelling: str) -> None:
    assert normalize.iin(spelling) == VALID_IIN


@pytest.mark.parametrize("value", [
    "850101300125",                  # wrong check digit
    "85010130012",                   # 11 digits
    "8501013001240",                 # 13 digits
    VALID_BIN,                       # a BIN is not an IIN
    " 85 01 01 30 01 24 ",           # more than 16 characters once stripped
    "",
])
def test_iin_rejected(value: str) -> None:
    assert normalize.iin(value) is None


def test_bin_normalizes_and_is_not_an_iin() -> None:
    assert normalize.bin_("0712-4050-0401") == VALID_BIN
    assert normalize.bin_(VALID_IIN) is None
    assert normalize.BY_KIND["bin"] is normalize.bin_
    assert normalize.BY_KIND["iin"] is normalize.iin


# --- names ----------------------------------------------------------------------------------


def test_name_case_and_spaces() -> None:
    expected = normalize.name("Әлібек Қайратұлы")
    assert expected == "әлібек қайратұлы"
    for spelling in ["ӘЛІБЕК ҚАЙРАТҰЛЫ", "  Әлібек   Қайратұлы ", "әлібек\tқайратұлы", "Әлібек\u00a0Қайратұлы"]:
        assert normalize.name(spelling) == expected


def test_name_yo_and_ye_are_one_letter() -> None:
    assert normalize.name("Ерлан Пётр Ёлкин") == normalize.name("Ерлан Петр Елкин") == "ерлан петр елкин"


def test_name_nfd_and_nfc_forms_are_equal() -> None:
    # Й and Ё decompose under NFD (И + breve, Е + diaeresis); the Kazakh letters Ә, Қ, Ұ do not.
    text = "Йомарт Әлібекұлы Ёлкин"
    nfc, nfd = unicodedata.normalize("NFC", text), unicodedata.normalize("NFD", text)
    assert nfc != nfd  # otherwise the test would prove nothing
    assert normalize.name(nfd) == normalize.name(nfc) == "йомарт әлібекұлы елкин"
    # Ё in NFD form is Е + U+0308: it must still fold to е.
    assert normalize.name(unicodedata.normalize("NFD", "Ё")) == "е"


def test_empty_name_is_none() -> None:
    assert normalize.name("") is None
    assert normalize.name(" \t\n ") is None


# --- email ----------------------------------------------------------------------------------


def test_email_lowercased_and_trimmed() -> None:
    assert normalize.email("  Aliya.K@Mail.KZ ") == "aliya.k@mail.kz"
    assert normalize.email("aliya.k@mail.kz") == normalize.email("ALIYA.K@MAIL.KZ")


@pytest.mark.parametrize("value", ["no-at-sign", "a@b", "a b@mail.kz", "a@@mail.kz", "@mail.kz", "a@mail.", ""])
def test_email_rejected(value: str) -> None:
    assert normalize.email(value) is None
