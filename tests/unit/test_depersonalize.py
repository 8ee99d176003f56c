"""Column actions (streams/depersonalize.py) on the demo regulation, with a fixed 32-byte key."""
from __future__ import annotations

import traceback
from datetime import date, datetime, timezone

import pytest

from model.regulation import Table
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
    assert set(plans) == {"population.persons", "social.organizations", "social.payments",
                          "catalog.type_samples", "social.appeals", "registry_office.persons_main",
                          "registry_office.person_addresses"}
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


# --- the new actions on a table of their own ------------------------------------------------

APPEALS = {
    "name": "social.appeals",
    "primary_key": ["appeal_id"],
    "columns": [
        {"name": "appeal_id", "type": "bigint", "nullable": False},
        {"name": "full_name", "type": "text", "action": "hash", "kind": "name"},
        {"name": "passport_no", "type": "varchar(12)", "action": "hash", "kind": "passport"},
        {"name": "id_card_no", "type": "varchar(12)", "action": "hash", "kind": "id_card"},
        {"name": "birth_date", "type": "date", "action": "generalize", "to": "age_band"},
        {"name": "address", "type": "text", "action": "generalize", "to": "address_region"},
        {"name": "postcode", "type": "varchar(8)", "action": "generalize", "to": "postcode_region"},
        {"name": "body", "type": "text", "action": "redact"},
    ],
}
REFERENCE = date(2024, 6, 1)
BODY = "Прошу проверить выплату. ИИН 850101 300 124, тел. +7 (701) 234-56-78, паспорт N 1234 5678."


def appeal(**overrides) -> dict:
    row = {"appeal_id": 1, "full_name": "Нұрлан Әлібеков", "passport_no": "N12345678", "id_card_no": "012345678",
           "birth_date": BIRTH_DAYS, "address": "Ақтөбе облысы, Ақтөбе қ., Абай даңғылы 10",
           "postcode": "D00 A1B2", "body": BODY}
    row.update(overrides)
    return row


@pytest.fixture(scope="module")
def appeals(ring) -> TablePlan:
    return TablePlan(Table.model_validate(APPEALS), ring)


def test_appeals_output_columns(appeals) -> None:
    assert appeals.output_columns == ["appeal_id", "full_name_hash", "passport_no_hash", "id_card_no_hash",
                                      "birth_date_age_band", "address_region", "postcode_region", "body_redacted"]


def test_new_actions_applied(appeals, ring) -> None:
    out, defects = appeals.apply(appeal(), today=REFERENCE)
    assert defects == []
    assert out["full_name_hash"] == pseudonym(ring.subkey("name"), b"nurlan alibekov")
    assert out["passport_no_hash"] == pseudonym(ring.subkey("passport"), b"N12345678")
    assert out["id_card_no_hash"] == pseudonym(ring.subkey("id_card"), b"012345678")
    assert out["birth_date_age_band"] == "30-39"          # 1985-01-01 on 2024-06-01: 39
    assert out["address_region"] == "15"
    assert out["postcode_region"] == "D"
    assert out["body_redacted"] == ("Прошу проверить выплату. ИИН [IIN], тел. [PHONE], паспорт [PASSPORT].")
    text = repr(out)
    for clear in ("850101", "300 124", "701", "1234 5678", "12345678", "Нұрлан", "Әлібеков", "Абай", "D00 A1B2"):
        assert clear not in text


def test_name_in_latin_gets_the_cyrillic_pseudonym(appeals) -> None:
    cyrillic, _ = appeals.apply(appeal(), today=REFERENCE)
    latin, _ = appeals.apply(appeal(full_name="NURLAN ALIBEKOV"), today=REFERENCE)
    kazakh_latin, _ = appeals.apply(appeal(full_name="Nurlan Älibekov"), today=REFERENCE)
    assert cyrillic["full_name_hash"] == latin["full_name_hash"] == kazakh_latin["full_name_hash"]


def test_age_band_uses_the_reference_date(appeals) -> None:
    assert appeals.apply(appeal(), today=date(2024, 12, 31))[0]["birth_date_age_band"] == "30-39"
    assert appeals.apply(appeal(), today=date(2025, 1, 1))[0]["birth_date_age_band"] == "40-49"
    # Without a date, today's (UTC) is used: some band, never the birth date.
    assert appeals.apply(appeal())[0]["birth_date_age_band"].endswith(("9", "+"))


def test_new_actions_report_defects_without_values(appeals) -> None:
    out, defects = appeals.apply(appeal(passport_no="N1234567", id_card_no="12345678", birth_date=20000,
                                        address="ул. Ленина 5", postcode="A05E7H", full_name="12345"),
                                 today=REFERENCE)
    assert out["passport_no_hash"].startswith(INVALID_PREFIX)
    assert out["id_card_no_hash"].startswith(INVALID_PREFIX)
    assert out["full_name_hash"].startswith(INVALID_PREFIX)
    assert out["birth_date_age_band"] is None
    assert out["address_region"] is None and out["postcode_region"] is None
    assert defects == [
        Defect("full_name", "not a valid name"),
        Defect("passport_no", "not a valid passport"),
        Defect("id_card_no", "not a valid id_card"),
        Defect("birth_date", "date after the reference date"),
        Defect("address", "no region found"),
        Defect("postcode", "not a Kazakh postcode"),
    ]
    for clear in ("N1234567", "12345678", "Ленина", "A05E7H", "12345"):
        assert clear not in repr(defects)


def test_redaction_counts_are_not_defects(appeals) -> None:
    out, defects = appeals.apply(appeal(body="Без идентификаторов, сумма 12 500,00 тенге."), today=REFERENCE)
    assert out["body_redacted"] == "Без идентификаторов, сумма 12 500,00 тенге."
    assert defects == []


@pytest.mark.parametrize(("column", "value"), [
    ("body", 12345),
    ("address", ["Алматы"]),
    ("birth_date", "1985-01-01"),
    ("passport_no", 12345678),
])
def test_new_actions_wrong_type_names_column_not_value(appeals, column: str, value) -> None:
    with pytest.raises(ValueError) as info:
        appeals.apply(appeal(**{column: value}), today=REFERENCE)
    assert str(info.value).startswith(f"column {column}:")
    assert str(value) not in str(info.value)


def test_salvage_with_new_actions(appeals) -> None:
    salvaged = appeals.salvage(appeal(appeal_id="x", birth_date="bad"), today=REFERENCE)
    assert "appeal_id" not in salvaged and "birth_date_age_band" not in salvaged
    assert salvaged["body_redacted"].startswith("Прошу проверить")
    assert "850101" not in repr(salvaged)
