"""One Unicode policy (model/fold.py) for hashing, redaction, the depersonalization check and the
rules: an identifier spelled with invisible characters, Unicode spaces, dashes and digits, or
with look-alike letters of the other script, gives one pseudonym, one redaction and one finding.

The spellings are generated (hypothesis) from clean identifiers whose expected outcomes are
literals or are the clean spelling's own outcome through the same public path; the property is
that the spelling does not matter.
"""
from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings, strategies as st

from model import normalize
from model.fold import fold
from model.identifiers import check_digit
from model.leak_scan import KnownValues, scan_text, structural_kinds
from streams.depersonalize import INVALID_PREFIX, TablePlan
from streams.keys import KeyRing
from streams.quality import RuleSet
from streams.redact import redact

RING = KeyRing("k1", bytes(range(32)))

INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u200e", "\u200f",
             "\u202a", "\u202c", "\u2066", "\u2069", "\u034f", "\ufe0f", "\u180e"]
SPACES = ["\u00a0", "\u2002", "\u2003", "\u2007", "\u2009", "\u200a", "\u202f", "\u205f", "\u3000"]
DASHES = ["\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2212", "\ufe63", "\uff0d"]
# The zero of some scripts' decimal digits: full-width, Arabic-Indic, extended Arabic-Indic,
# Devanagari, Bengali, Thai, Mongolian, mathematical bold.
DIGIT_ZEROS = [0xFF10, 0x0660, 0x06F0, 0x0966, 0x09E6, 0x0E50, 0x1810, 0x1D7CE]
# Cyrillic letters and the Latin letters that look like them (TR39 confusables).
LOOK_ALIKES = {"а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i",
               "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
               "С": "C", "Т": "T", "Х": "X", "һ": "h"}
LATIN_LOOK_ALIKES = {latin: cyrillic for cyrillic, latin in LOOK_ALIKES.items()}


@st.composite
def spelled(draw, clean: str) -> str:
    """`clean` with invisible characters put anywhere, and each space, dash and digit possibly
    in another Unicode spelling."""
    out = []
    for char in clean:
        if draw(st.booleans()):
            out.append(draw(st.sampled_from(INVISIBLE)))
        if char == " " and draw(st.booleans()):
            char = draw(st.sampled_from(SPACES))
        elif char == "-" and draw(st.booleans()):
            char = draw(st.sampled_from(DASHES))
        elif char.isdigit() and draw(st.booleans()):
            char = chr(draw(st.sampled_from(DIGIT_ZEROS)) + int(char))
        out.append(char)
    if draw(st.booleans()):
        out.append(draw(st.sampled_from(INVISIBLE)))
    return "".join(out)


@st.composite
def mixed_script(draw, clean: str) -> str:
    """`clean` with, in each word of three letters or more, one letter replaced by its look-alike
    of the other script (one letter in three or more stays a minority), then `spelled`."""
    words = []
    for word in clean.split(" "):
        table = LOOK_ALIKES if any(c in LOOK_ALIKES for c in word) else LATIN_LOOK_ALIKES
        swappable = [i for i, c in enumerate(word) if c in table]
        if len(word) >= 3 and swappable and draw(st.booleans()):
            i = draw(st.sampled_from(swappable))
            word = word[:i] + table[word[i]] + word[i + 1:]
        words.append(word)
    return draw(spelled(" ".join(words)))


def _twelve(prefix: str) -> str | None:
    digit = check_digit(prefix)
    return None if digit is None else prefix + str(digit)


@st.composite
def iins(draw) -> str:
    birth = draw(st.dates(date(1930, 1, 1), date(2024, 12, 31)))
    century_sex = draw(st.sampled_from("3456"))
    serial = draw(st.integers(0, 9999))
    iin = _twelve(f"{birth:%y%m%d}{century_sex}{serial:04d}")
    return iin if iin is not None else draw(st.nothing())


@st.composite
def bins(draw) -> str:
    registered = draw(st.dates(date(1995, 1, 1), date(2024, 12, 31)))
    bin_ = _twelve(f"{registered:%y%m}{draw(st.sampled_from('456'))}{draw(st.integers(0, 9))}"
                   f"{draw(st.integers(0, 99999)):05d}")
    return bin_ if bin_ is not None else draw(st.nothing())


@st.composite
def phones(draw) -> str:
    number = f"7{draw(st.sampled_from(['01', '02', '05', '07', '47', '71', '75', '77', '27']))}"
    rest = f"{draw(st.integers(0, 9999999)):07d}"
    return draw(st.sampled_from([f"+7 {number} {rest[:3]}-{rest[3:5]}-{rest[5:]}",
                                 f"8 ({number}) {rest[:3]} {rest[3:5]} {rest[5:]}", f"+7{number}{rest}"]))


def groupings(iin: str) -> list[str]:
    return [iin, f"{iin[:6]} {iin[6:]}", f"{iin[:4]}-{iin[4:8]}-{iin[8:]}"]


NAMES = ["Нұрлан Әлібеков", "Айгерім Сейтқали", "Петров Сергей Иванович", "Жанболат Оспанов",
         "Ірина Ким", "Ivan Petrov", "Aliya Kasymova", "Ерлан Темірханов"]
EMAILS = ["aigerim.seitkali@mail.kz", "petrov-s@gov.kz", "zh.ospanov@egov.kz"]

SETTINGS = settings(max_examples=150, deadline=None)


# --- one pseudonym ------------------------------------------------------------------------------

@SETTINGS
@given(st.data(), iins())
def test_an_iin_has_one_pseudonym_however_spelled(data, iin: str) -> None:
    spelling = data.draw(spelled(data.draw(st.sampled_from(groupings(iin)))))
    assert normalize.iin(spelling) == iin


@SETTINGS
@given(st.data(), bins())
def test_a_bin_has_one_canonical_form_however_spelled(data, bin_: str) -> None:
    assert normalize.bin_(data.draw(spelled(data.draw(st.sampled_from(groupings(bin_)))))) == bin_


@SETTINGS
@given(st.data(), phones())
def test_a_phone_has_one_canonical_form_however_spelled(data, phone: str) -> None:
    canonical = normalize.phone(phone)
    assert canonical is not None
    assert normalize.phone(data.draw(spelled(phone))) == canonical


@SETTINGS
@given(st.data(), st.sampled_from(EMAILS))
def test_an_email_has_one_canonical_form_however_spelled(data, email: str) -> None:
    full_width = data.draw(st.booleans())
    text = "".join(chr(ord(c) + 0xFEE0) for c in email) if full_width else email
    assert normalize.email(data.draw(spelled(text))) == email


@SETTINGS
@given(st.data(), st.sampled_from(NAMES))
def test_a_name_has_one_canonical_form_however_spelled(data, name: str) -> None:
    assert normalize.name(data.draw(mixed_script(name))) == normalize.name(name)


@SETTINGS
@given(st.data(), iins(), st.sampled_from(NAMES))
def test_a_persons_row_has_one_set_of_pseudonyms_however_spelled(demo, data, iin: str, name: str) -> None:
    plan = TablePlan(demo.table("population.persons"), RING)
    first, last = (name.split(" ") + [name])[:2]

    def row(iin_text: str, first_name: str, last_name: str) -> dict:
        return {"person_id": 1, "iin": iin_text, "last_name": last_name, "first_name": first_name,
                "middle_name": None, "birth_date": 5479, "sex": "F", "phone": "+7 701 234 56 78",
                "address": None, "kato_code": "751110000", "status": "active",
                "updated_at": "2024-01-15T10:30:00Z"}

    clean, _ = plan.apply(row(iin, first, last), today=date(2024, 1, 15))
    odd, defects = plan.apply(row(data.draw(spelled(iin)), data.draw(mixed_script(first)),
                                  data.draw(mixed_script(last))), today=date(2024, 1, 15))
    assert odd == clean
    assert defects == []


@SETTINGS
@given(st.data(), st.sampled_from(["90010130012", "8501013001", "ABC"]))
def test_an_invalid_value_has_one_pseudonym_however_spelled(demo, data, invalid: str) -> None:
    plan = TablePlan(demo.table("population.persons"), RING)
    base = {"person_id": 1, "last_name": "A", "first_name": "B", "middle_name": None, "birth_date": 5479,
            "sex": "F", "phone": None, "address": None, "kato_code": "751110000", "status": "active",
            "updated_at": "2024-01-15T10:30:00Z"}
    clean, _ = plan.apply(dict(base, iin=invalid), today=date(2024, 1, 15))
    odd, _ = plan.apply(dict(base, iin=data.draw(spelled(invalid))), today=date(2024, 1, 15))
    assert odd["iin_hash"] == clean["iin_hash"]
    assert clean["iin_hash"].startswith(INVALID_PREFIX)


# --- one redaction, one finding ---------------------------------------------------------------------

def _sentence(identifier: str) -> str:
    return f"Заявитель {identifier} обратился 12.05.2023, сумма 12 500,00"


@SETTINGS
@given(st.data(), iins())
def test_an_iin_is_redacted_and_found_however_spelled(data, iin: str) -> None:
    spelling = data.draw(spelled(data.draw(st.sampled_from(groupings(iin)))))
    text = _sentence(spelling)
    assert redact(text) == ("Заявитель [IIN] обратился 12.05.2023, сумма 12 500,00", {"IIN": 1})
    assert "iin" in structural_kinds(text)


@SETTINGS
@given(st.data(), bins())
def test_a_bin_is_redacted_and_found_in_a_personal_column_however_spelled(data, bin_: str) -> None:
    text = _sentence(data.draw(spelled(data.draw(st.sampled_from(groupings(bin_))))))
    assert redact(text) == ("Заявитель [BIN] обратился 12.05.2023, сумма 12 500,00", {"BIN": 1})
    assert [f.kind for f in scan_text(text, "t", personal=True)] == ["bin"]


@SETTINGS
@given(st.data(), phones())
def test_a_phone_is_redacted_and_found_however_spelled(data, phone: str) -> None:
    text = _sentence(data.draw(spelled(phone)))
    assert redact(text) == ("Заявитель [PHONE] обратился 12.05.2023, сумма 12 500,00", {"PHONE": 1})
    assert structural_kinds(text) == ("phone",)


@SETTINGS
@given(st.data(), st.sampled_from(EMAILS))
def test_an_email_is_redacted_and_found_however_spelled(data, email: str) -> None:
    text = _sentence(data.draw(spelled(email)))
    assert redact(text) == ("Заявитель [EMAIL] обратился 12.05.2023, сумма 12 500,00", {"EMAIL": 1})
    assert structural_kinds(text) == ("email",)


@SETTINGS
@given(st.data(), st.sampled_from(NAMES))
def test_a_known_name_is_found_however_spelled(data, name: str) -> None:
    known = KnownValues()
    known.add_name(name)
    text = f"Обращение: {data.draw(mixed_script(name))}, 12.05.2023"
    assert [f.kind for f in scan_text(text, "t", known)] == ["name"]


# --- the rules read the same text ------------------------------------------------------------------

@SETTINGS
@given(st.data(), iins())
def test_the_rules_accept_a_valid_iin_however_spelled(demo, data, iin: str) -> None:
    rules = RuleSet.for_table(demo.table("population.persons"))
    row = {"person_id": 1, "iin": data.draw(spelled(iin)), "last_name": "Ким", "first_name": "Ірина",
           "middle_name": None, "birth_date": 5479, "sex": "F", "phone": None, "address": None,
           "kato_code": "751110000", "status": data.draw(spelled("active")),
           "updated_at": "2024-01-15T10:30:00Z"}
    assert rules.evaluate(rules.decode(row), date(2024, 1, 15)) == []


# --- the policy itself, spelled out -----------------------------------------------------------------

@pytest.mark.parametrize("text, folded", [
    ("8501\u200b0130\u00ad0124", "850101300124"),
    ("\ufeff+7\u00a0701\u2009234\u201356\u201178", "+7 701 234-56-78"),
    ("\uff18\uff15\u0660\u06f1", "8501"),
    ("Нурл\u0061н", "Нурлан"),            # a Latin a in a Cyrillic word
    ("Iv\u0430n", "Ivan"),                # a Cyrillic а in a Latin word
    ("Петров Ivan", "Петров Ivan"),       # two words, each in one script: left alone
    ("Ivan\u200dov", "Ivanov"),
    ("заявление № 4521, 85 м²", "заявление № 4521, 85 м²"),  # not NFKC
    ("e\u0301", "\u00e9"),
    ("status", "status"),
])
def test_what_fold_does(text: str, folded: str) -> None:
    assert fold(text) == folded
