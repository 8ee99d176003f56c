"""The demo data generator: valid identifiers, realistic names and phones, marked defects."""
from __future__ import annotations

import random
import re
from datetime import date
from decimal import Decimal

import pytest

from infra.demo import generator
from model.identifiers import is_valid_bin, is_valid_iin

TODAY = date(2026, 3, 15)
KAZAKH_LETTERS = set("әғқңөұүһіӘҒҚҢӨҰҮҺІ")
PERSON_IIN = generator.make_iin(random.Random(0), date(1985, 1, 1), "M")
ORG_BIN = generator.make_bin(random.Random(0), date(2007, 2, 1))


def persons(n: int, seed: int = 1, defect_rate: float = 0.02) -> list[dict]:
    rng = random.Random(seed)
    return [generator.make_person(rng, defect_rate=defect_rate, today=TODAY) for _ in range(n)]


def organizations(n: int, seed: int = 1, defect_rate: float = 0.02) -> list[dict]:
    rng = random.Random(seed)
    return [generator.make_organization(rng, defect_rate=defect_rate) for _ in range(n)]


def payments(n: int, seed: int = 1, defect_rate: float = 0.02) -> list[dict]:
    rng = random.Random(seed)
    return [
        generator.make_payment(rng, PERSON_IIN, ORG_BIN, defect_rate=defect_rate, today=TODAY)
        for _ in range(n)
    ]


def normalised_phone(phone: str) -> str:
    digits = re.sub(r"\D", "", phone)
    return "7" + digits[1:] if digits.startswith("8") else digits


@pytest.mark.parametrize(
    ("born", "sex", "seventh"),
    [(date(1899, 12, 31), "F", "2"), (date(1985, 1, 1), "M", "3"), (date(1985, 1, 1), "F", "4"),
     (date(2012, 7, 9), "M", "5"), (date(2012, 7, 9), "F", "6")],
)
def test_iin_encodes_birth_date_century_and_sex(born: date, sex: str, seventh: str) -> None:
    rng = random.Random(5)
    for _ in range(50):
        iin = generator.make_iin(rng, born, sex)
        assert is_valid_iin(iin)
        assert iin[:6] == born.strftime("%y%m%d")
        assert iin[6] == seventh


def test_bin_is_valid_and_encodes_registration_month() -> None:
    rng = random.Random(5)
    for _ in range(500):
        bin_ = generator.make_bin(rng, date(2007, 2, 20))
        assert is_valid_bin(bin_)
        assert bin_[:4] == "0702"
        assert bin_[5] in "0123"


def test_identifiers_are_valid_unless_flagged() -> None:
    for row in persons(5000):
        assert is_valid_iin(row["iin"]) == (row["_defect"] != "bad_iin_check_digit")
    for row in organizations(2000):
        assert is_valid_bin(row["bin"]) == (row["_defect"] != "bad_bin_check_digit")
    for row in payments(2000):
        assert is_valid_iin(row["person_iin"])
        assert (row["person_iin"] != PERSON_IIN) == (row["_defect"] == "orphan_person_iin")


def test_names_use_kazakh_letters() -> None:
    rows = persons(500)
    names = "".join(r["last_name"] + r["first_name"] + (r["middle_name"] or "") for r in rows)
    assert set(names) & KAZAKH_LETTERS
    # Both Kazakh and Russian names appear, not one population only.
    assert sum(bool(set(r["first_name"]) & KAZAKH_LETTERS) for r in rows) > 100
    assert sum(r["first_name"] in ("Иван", "Анна", "Сергей", "Елена", "Ольга", "Андрей") for r in rows) > 5


def test_name_pools_are_large_enough() -> None:
    assert len(set(generator.MALE_FIRST_NAMES)) >= 40
    assert len(set(generator.FEMALE_FIRST_NAMES)) >= 40
    assert len({r["last_name"] for r in persons(5000) if r["sex"] == "M"}) >= 40


def test_names_agree_with_sex() -> None:
    for row in persons(3000):
        male = row["sex"] == "M"
        first, last, middle = row["first_name"], row["last_name"], row["middle_name"] or ""
        assert first in (generator.MALE_FIRST_NAMES if male else generator.FEMALE_FIRST_NAMES)
        if last.endswith(("ова", "ева", "ина", "қызы")):
            assert not male, last
        elif last.endswith(("ов", "ев", "ин", "ұлы")):
            assert male, last
        if middle:
            assert middle.endswith(("ұлы", "вич") if male else ("қызы", "вна")), middle
        # The IIN's 7th digit carries the sex too (odd male, even female).
        assert int(row["iin"][6]) % 2 == (1 if male else 0)


def test_missing_patronymic_is_not_a_defect() -> None:
    rows = persons(3000, defect_rate=0.0)
    assert any(r["middle_name"] is None for r in rows)
    assert any(r["middle_name"] == "" for r in rows)
    assert all(r["_defect"] is None for r in rows)


def test_phones_normalise_to_kazakh_mobiles_unless_flagged() -> None:
    rows = [r for r in persons(5000) if r["phone"] is not None]
    for row in rows:
        phone = normalised_phone(row["phone"])
        ok = len(phone) == 11 and phone.startswith("77") and phone[1:4] in generator.OPERATOR_CODES
        assert ok == (row["_defect"] != "bad_phone"), row["phone"]
    spellings = {re.sub(r"\d", "9", r["phone"]) for r in rows if r["_defect"] is None}
    assert {"+9 999 999 99 99", "99999999999", "+99999999999", "9(999)999-99-99"} <= spellings


def test_malformed_phones_never_normalise() -> None:
    rng = random.Random(3)
    for _ in range(1000):
        phone = normalised_phone(generator.make_phone(rng, malformed=True))
        assert not (len(phone) == 11 and phone.startswith("77"))


def test_each_defect_kind_has_its_effect() -> None:
    person_rows = persons(20000, defect_rate=0.05)
    for row in person_rows:
        defect = row["_defect"]
        assert defect in (None, *generator.PERSON_DEFECTS)
        assert (row["kato_code"] is None) == (defect == "null_kato")
        assert (row["birth_date"] > TODAY) == (defect == "future_birth_date")
        if row["kato_code"] is not None:
            assert row["kato_code"] in generator.KATO
    assert {r["_defect"] for r in person_rows} == {None, *generator.PERSON_DEFECTS}
    for row in organizations(5000, defect_rate=0.05):
        assert (row["kato_code"] is None) == (row["_defect"] == "null_kato")
    for row in payments(5000, defect_rate=0.05):
        assert (row["amount"] < 0) == (row["_defect"] == "negative_amount")


@pytest.mark.parametrize("make", [persons, organizations, payments])
def test_defect_rate_is_roughly_respected(make) -> None:
    flagged = sum(row["_defect"] is not None for row in make(5000, defect_rate=0.02))
    assert 50 <= flagged <= 160  # expected 100, standard deviation about 10
    assert not any(row["_defect"] for row in make(2000, defect_rate=0.0))


def test_a_payment_carries_its_recipients_region() -> None:
    rng = random.Random(3)
    rows = [generator.make_payment(rng, PERSON_IIN, ORG_BIN, kato_code="751110000", defect_rate=0.5, today=TODAY)
            for _ in range(200)]
    assert {row["kato_code"] for row in rows} == {"751110000"}
    assert {row["kato_code"] for row in payments(10)} == {None}  # no region given, none made up


def test_payments_are_consistent() -> None:
    for row in payments(3000, defect_rate=0.0):
        assert row["payment_type"] in generator.PAYMENT_TYPES
        assert row["status"] in generator.PAYMENT_STATUSES
        assert row["period"].day == 1 and row["period"] < TODAY.replace(day=1)
        assert row["amount"] == row["amount"].quantize(Decimal("0.01")) > 0
        if row["status"] in ("paid", "returned"):
            assert row["paid_at"] is not None and row["paid_at"].date() < TODAY
        else:
            assert row["paid_at"] is None


def test_addresses_name_the_city_of_their_kato_code() -> None:
    rng = random.Random(9)
    for code, city in generator.KATO.items():
        assert re.fullmatch(r"\d{9}", code)
        for _ in range(20):
            address = generator.make_address(rng, code)
            assert address.startswith(f"г. {city}, ") or " қ., " in address


def test_same_seed_same_rows() -> None:
    assert persons(300, seed=42) == persons(300, seed=42)
    assert organizations(100, seed=42) == organizations(100, seed=42)
    assert payments(300, seed=42) == payments(300, seed=42)
    assert persons(300, seed=42) != persons(300, seed=43)
