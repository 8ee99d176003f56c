"""Column actions (streams/depersonalize.py) on the demo regulation, with a fixed 32-byte key."""
from __future__ import annotations

import traceback
from datetime import datetime, timezone

import pytest

from streams.depersonalize import INVALID_PREFIX, Defect, TablePlan, plans_for
from streams.keys import pseudonym

IIN = "850101300124"
BAD_IIN = "850101300125"       # wrong check digit
BIN = "071240500401"
PHONE = "+7 701 234 56 78"
BIRTH_DAYS = 5479              # 1985-01-01


def person(**overrides) -> dict:
    row = {
        "person_id": 42, "iin": IIN, "last_name": "Сейітқалиев", "first_name": "Әлібек",
        "middle_name": "Қайратұлы", "birth_date": BIRTH_DAYS, "sex": "M", "phone": PHONE,
        "address": "Алматы, Абай даңғылы 10", "kato_code": "751110000", "status": "active",
        "updated_at": "2024-01-15T16:30:00.5+06:00",
    }
    row.update(overrides)
    return row


def payment(**overrides) -> dict:
    row = {
        "payment_id": 7, "person_iin": IIN, "org_bin": BIN, "payment_type": "pension",
        "amount": "12500.5", "period": 19723, "status": "paid", "paid_at": None,
        "updated_at": "2024-01-15T10:30:00Z",
    }
    row.update(overrides)
    return row


@pytest.fixture(scope="module")
def plans(demo, ring) -> dict[str, TablePlan]:
    return plans_for(demo.tables, ring)


@pytest.fixture(scope="module")
def persons(plans) -> TablePlan:
    return plans["population.persons"]


def test_plans_for_every_table(plans, ring) -> None:
    assert set(plans) == {"population.persons", "social.organizations", "social.payments"}
    assert all(plan.key_id == ring.key_id for plan in plans.values())


def test_persons_plan_columns(persons) -> None:
    assert persons.output_columns == ["person_id", "iin_hash", "birth_date_year", "sex", "phone_hash",
                                      "kato_code_region", "status", "updated_at"]
    for dropped in ("last_name", "first_name", "middle_name", "address", "iin", "phone", "birth_date", "kato_code"):
        assert dropped not in persons.output_columns


def test_persons_row_depersonalized(persons, ring) -> None:
    out, defects = persons.apply(person())
    assert defects == []
    assert set(out) == set(persons.output_columns)
    assert out["person_id"] == 42
    assert out["iin_hash"] == pseudonym(ring.subkey("iin"), IIN.encode())
    assert out["phone_hash"] == pseudonym(ring.subkey("phone"), b"+77012345678")
    assert out["birth_date_year"] == 1985
    assert out["kato_code_region"] == "75"
    assert out["sex"] == "M" and out["status"] == "active"
    assert out["updated_at"] == datetime(2024, 1, 15, 10, 30, 0, 500000, tzinfo=timezone.utc)
    text = repr(out)
    for clear in (IIN, "7012345678", "Сейітқалиев", "Әлібек", "Қайратұлы", "Абай", "751110000"):
        assert clear not in text


def test_same_iin_joins_across_tables(plans) -> None:
    persons_out, _ = plans["population.persons"].apply(person())
    payments_out, _ = plans["social.payments"].apply(payment(person_iin="850101 300124"))
    assert payments_out["person_iin_hash"] == persons_out["iin_hash"]
    assert payments_out["amount"] is not None and str(payments_out["amount"]) == "12500.50"


def test_identifier_kinds_never_share_a_pseudonym(plans, ring) -> None:
    # The same digits hashed as an IIN and as a phone use different subkeys.
    assert pseudonym(ring.subkey("iin"), b"77012345678") != pseudonym(ring.subkey("phone"), b"77012345678")
    org_out, _ = plans["social.organizations"].apply(
        {"org_id": 1, "bin": BIN, "name": "ТОО Ромашка", "kato_code": None, "updated_at": "2024-01-15T10:30:00Z"})
    assert org_out["bin_hash"] == pseudonym(ring.subkey("bin"), BIN.encode())
    assert org_out["bin_hash"] != pseudonym(ring.subkey("iin"), BIN.encode())


def test_two_phone_spellings_one_pseudonym(persons) -> None:
    a, _ = persons.apply(person(phone="+7 701 234 56 78"))
    b, _ = persons.apply(person(phone="8(701)234-56-78"))
    c, _ = persons.apply(person(phone="+7 701 234 56 79"))
    assert a["phone_hash"] == b["phone_hash"]
    assert a["phone_hash"] != c["phone_hash"]


def test_different_key_different_pseudonyms(demo, ring) -> None:
    from streams.keys import KeyRing

    other = TablePlan(demo.table("population.persons"), KeyRing("k1", bytes(range(1, 33))))
    mine = TablePlan(demo.table("population.persons"), ring)
    assert other.apply(person())[0]["iin_hash"] != mine.apply(person())[0]["iin_hash"]


def test_invalid_iin_marked_and_reported_without_value(persons) -> None:
    out, defects = persons.apply(person(iin=BAD_IIN))
    marker = out["iin_hash"]
    assert marker.startswith(INVALID_PREFIX)
    assert len(marker) == len(INVALID_PREFIX) + 26
    assert defects == [Defect("iin", "not a valid iin")]
    assert BAD_IIN not in repr(defects) and BAD_IIN not in marker
    # Equal bad values group together; a valid value never looks like a marker.
    assert persons.apply(person(iin=BAD_IIN))[0]["iin_hash"] == marker
    assert persons.apply(person(iin="850101300126"))[0]["iin_hash"] != marker
    assert not persons.apply(person())[0]["iin_hash"].startswith(INVALID_PREFIX)


def test_invalid_phone_and_kato_are_defects(persons) -> None:
    out, defects = persons.apply(person(phone="+7 916 123 45 67", kato_code="75"))
    assert out["phone_hash"].startswith(INVALID_PREFIX)
    assert out["kato_code_region"] is None
    assert {d.column for d in defects} == {"phone", "kato_code"}
    assert "9161234567" not in repr(defects)


def test_null_optional_columns(persons) -> None:
    out, defects = persons.apply(person(phone=None, kato_code=None, middle_name=None))
    assert out["phone_hash"] is None and out["kato_code_region"] is None
    assert defects == []


@pytest.mark.parametrize(("column", "value"), [
    ("person_id", "987654321"),        # bigint as a string
    ("birth_date", "1985-01-01"),      # date as a string instead of days
    ("updated_at", "31/12/2024 17:45"),
    ("iin", 850101300124),             # identifier as a number
    ("sex", 7654321),
])
def test_wrong_type_names_column_not_value(persons, column: str, value) -> None:
    with pytest.raises(ValueError) as info:
        persons.apply(person(**{column: value}))
    message = str(info.value)
    assert message.startswith(f"column {column}:")
    assert str(value) not in message
    # Nor does the printed traceback quote it through a chained exception.
    printed = "".join(traceback.format_exception(info.value))
    assert str(value) not in printed


def test_payments_amount_not_a_number(plans) -> None:
    with pytest.raises(ValueError) as info:
        plans["social.payments"].apply(payment(amount="12 500,50"))
    assert "column amount" in str(info.value)
    assert "12 500,50" not in str(info.value)


def test_wrong_type_kato_code_is_a_value_error(persons) -> None:
    with pytest.raises(ValueError, match="column kato_code"):
        persons.apply(person(kato_code=751110000))


def test_key_only_for_delete(persons) -> None:
    out = persons.key_only(person(person_id=9))
    assert out["person_id"] == 9
    assert all(out[c] is None for c in persons.output_columns if c != "person_id")
    assert persons.key_only({"person_id": 9}) == out


def test_salvage_keeps_what_can_be_depersonalized(persons, ring) -> None:
    salvaged = persons.salvage(person(person_id="not-a-number", sex=None))
    assert "person_id" not in salvaged          # undecodable: omitted
    assert salvaged["sex"] is None
    assert salvaged["iin_hash"] == pseudonym(ring.subkey("iin"), IIN.encode())
    assert "last_name" not in salvaged and "address" not in salvaged
    assert IIN not in repr(salvaged) and "Әлібек" not in repr(salvaged)
