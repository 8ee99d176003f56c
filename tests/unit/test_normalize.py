"""Normalizers (model/normalize.py): one identifier, however it is spelled, one canonical form."""
from __future__ import annotations

import unicodedata

import pytest

from model import normalize

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


def test_landlines_are_kazakh_numbers_too() -> None:
    # Every Kazakh number has 7 after the country code: mobile 70x/747/77x and landline area
    # codes such as Almaty 727 alike, so an Almaty landline is accepted and normalized.
    assert normalize.phone("+7 727 123 45 67") == "+77271234567"
    assert normalize.phone("8 (727) 123-45-67") == "+77271234567"
    # ...whereas a Russian number sharing the +7 country code is not.
    assert normalize.phone("+7 495 123 45 67") is None


@pytest.mark.parametrize("value", [
    "+8 701 234 56 78",          # '+8' is no country code
    "+87012345678",
    "+7012345678",               # '+' with only 10 digits
    "+ 8 (701) 234-56-78",
    "7+7012345678",              # '+' in the middle
    "+7 701 234 56 78+",
    "++77012345678",
])
def test_plus_only_before_country_code_seven(value: str) -> None:
    assert normalize.phone(value) is None


def test_full_width_digits_are_the_same_phone() -> None:
    # model/fold.py: digits of any script are read as their ASCII digits (issue 13 item 3).
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in "87012345678")
    assert normalize.phone(full_width) == "+77012345678"


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
    "IIN850101300124",               # letters are refused, not stripped
    "85O101300124",                  # Latin O for a zero
    "850101З00124",                  # Cyrillic З for a three
    "850101300124a",
    "850101_300124",
    "850101.300124",
    "850101/300124",
])
def test_iin_rejected(value: str) -> None:
    assert normalize.iin(value) is None


def test_bin_normalizes_and_is_not_an_iin() -> None:
    assert normalize.bin_("0712-4050-0401") == VALID_BIN
    assert normalize.bin_(" 071240 500401 ") == VALID_BIN
    assert normalize.bin_(VALID_IIN) is None
    assert normalize.bin_("BIN 071240500401") is None
    assert normalize.bin_("07124O500401") is None
    assert normalize.BY_KIND["bin"] is normalize.bin_
    assert normalize.BY_KIND["iin"] is normalize.iin


# --- names ---------------------------------------------------------------------------------


def test_name_case_and_spaces() -> None:
    expected = normalize.name("Әлібек Қайратұлы")
    assert expected == "alibek kairatuli"
    for spelling in ["ӘЛІБЕК ҚАЙРАТҰЛЫ", "  Әлібек   Қайратұлы ", "әлібек\tқайратұлы", "Әлібек\u00a0Қайратұлы"]:
        assert normalize.name(spelling) == expected


def test_name_yo_and_ye_are_one_letter() -> None:
    assert normalize.name("Ерлан Пётр Ёлкин") == normalize.name("Ерлан Петр Елкин") == "erlan petr elkin"


def test_name_nfd_and_nfc_forms_are_equal() -> None:
    # Й and Ё decompose under NFD (И + breve, Е + diaeresis); the Kazakh letters Ә, Қ, Ұ do not.
    text = "Йомарт Әлібекұлы Ёлкин"
    nfc, nfd = unicodedata.normalize("NFC", text), unicodedata.normalize("NFD", text)
    assert nfc != nfd  # otherwise the test would prove nothing
    assert normalize.name(nfd) == normalize.name(nfc) == "iomart alibekuli elkin"
    # Ё in NFD form is Е + U+0308: it must still fold to е.
    assert normalize.name(unicodedata.normalize("NFD", "Ё")) == normalize.name("Е") == "e"
    # Latin letters with diacritics, composed or not.
    latin = "Älibek Qairatūly"
    assert normalize.name(unicodedata.normalize("NFD", latin)) == normalize.name(latin)


@pytest.mark.parametrize("spellings", [
    # Kazakh Cyrillic, its upper case, passport (ICAO) Latin, Kazakh Latin (2021)
    ["Нұрлан Әлібеков", "НҰРЛАН  ӘЛІБЕКОВ", "Nurlan Alibekov", "Nurlan Älibekov", "NURLAN ALIBEKOV"],
    ["Әлібек Қайратұлы", "Alibek Kairatuly", "Älibek Qairatūly", "ÄLİBEK QAİRATŪLY"],
    ["Жанна Шынар Ыбырай", "Zhanna Shynar Ybyrai", "Janna Şınar Ibyrai"],
    ["Ғалым Үсенов", "Galym Usenov", "Ğalym Üsenov"],
    ["Айгүл Өмірзақова", "Aigul Omirzakova", "Aigül Ömırzaqova"],
    ["Сәкен Жаңабаев", "Saken Zhanabaev", "Säken Jañabaev"],
    ["Мұхтар Һадиев", "Mukhtar Hadiev", "Mūhtar Hadiev"],
    ["Асхат Чингизов", "Askhat Chingizov", "Ashat Çingizov"],
    ["Ілияс", "Ilyas", "Ильяс"],
    ["Дмитрий", "Dmitriy", "Dmitry"],
])
def test_name_cyrillic_and_latin_spellings_meet(spellings: list[str]) -> None:
    canonical = {normalize.name(s) for s in spellings}
    assert len(canonical) == 1, canonical
    assert canonical.pop().isascii()


@pytest.mark.parametrize(("cyrillic", "latin"), [
    ("ә", "a"), ("ғ", "g"), ("қ", "k"), ("ң", "n"), ("ө", "o"), ("ұ", "u"), ("ү", "u"), ("һ", "h"), ("і", "i"),
])
def test_kazakh_letters_fold_to_their_latin_sound(cyrillic: str, latin: str) -> None:
    assert normalize.name("а" + cyrillic + "а") == "a" + latin + "a"
    assert normalize.name(("а" + cyrillic + "а").upper()) == "a" + latin + "a"


def test_name_merges_are_deliberate_but_names_stay_apart() -> None:
    # The documented trade-off: Ашат and Асхат give one skeleton...
    assert normalize.name("Ашат") == normalize.name("Асхат")
    # ...but different names stay different.
    assert normalize.name("Нұрлан Әлібеков") != normalize.name("Нұрлан Әлібекова")
    assert normalize.name("Бауыржан") != normalize.name("Бекзат")


def test_empty_name_is_none() -> None:
    assert normalize.name("") is None
    assert normalize.name(" \t\n ") is None
    assert normalize.name("12345") is None        # no letter: not a name
    assert normalize.name("-- ,") is None


# --- email ----------------------------------------------------------------------------------


def test_email_lowercased_and_trimmed() -> None:
    assert normalize.email("  Aliya.K@Mail.KZ ") == "aliya.k@mail.kz"
    assert normalize.email("aliya.k@mail.kz") == normalize.email("ALIYA.K@MAIL.KZ")


@pytest.mark.parametrize("value", ["no-at-sign", "a@b", "a b@mail.kz", "a@@mail.kz", "@mail.kz", "a@mail.", ""])
def test_email_rejected(value: str) -> None:
    assert normalize.email(value) is None


# --- passport -------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", [
    "N12345678", "n12345678", "N 1234 5678", "N-12345678", " N 12345678 ",
    "Н12345678",                   # Cyrillic Н
    "н 1234-5678",
])
def test_passport_spellings(spelling: str) -> None:
    assert normalize.passport(spelling) == "N12345678"


@pytest.mark.parametrize("value", [
    "N1234567", "N123456789", "12345678", "M12345678", "NN12345678", "N1234567O", "N12345678 ext", "",
])
def test_passport_rejected(value: str) -> None:
    assert normalize.passport(value) is None


# --- ID card --------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["012345678", "012 345 678", "012-345-678", " 012345678 "])
def test_id_card_spellings(spelling: str) -> None:
    assert normalize.id_card(spelling) == "012345678"


@pytest.mark.parametrize("value", ["01234567", "0123456789", "O12345678", "№012345678", "012.345.678", ""])
def test_id_card_rejected(value: str) -> None:
    assert normalize.id_card(value) is None


def test_every_identifier_kind_has_a_normalizer() -> None:
    from model.regulation import IdentifierKind

    assert set(normalize.BY_KIND) == {k.value for k in IdentifierKind}
