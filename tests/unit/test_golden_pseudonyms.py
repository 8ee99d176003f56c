"""Golden vectors: the pseudonyms of fixed inputs under a fixed test master key, written out.

Every other test of pseudonyms computes its expected value with the code under test, so a
changed derivation (HKDF salt or info, HMAC input, base32 spelling, normalization, truncation)
would pass them all while re-keying the whole warehouse and breaking every join with history.
These literals fail instead. If a derivation must change, it needs a new key id and a
re-keying of every table (docs/depersonalization.md, "Changing the derivation"); the vectors
change with it, in the same commit.
"""
from __future__ import annotations

from datetime import date

import pytest

from streams.depersonalize import TablePlan
from streams.keys import KeyRing, pseudonym

TEST_MASTER = bytes(range(32))   # never a production key: 00 01 02 ... 1f
RING = KeyRing("k1", TEST_MASTER)


def test_the_iin_subkey_is_pinned() -> None:
    assert RING.subkey("iin").hex() == "b5b7acdb588cdd32ee098a211df7acf6d1d7c6a50e76f898f52fa153546a365b"


@pytest.mark.parametrize("kind, canonical, expected", [
    ("iin", "900101300126", "ktn6vj44vsxdok3nd4as2zlsdwus557mzqgt43su2vopmhnrqosq"),
    ("bin", "071240500401", "w7fpnsfnqskkjwirlhllwt65nissda5ls6zed4zcg2ajzjbuwmoq"),
    ("phone", "+77012345678", "5xps7nfkrj2xgsbuckzmwjdevmgmd3mju3zhpouumc3veoj7yd4q"),
    ("name", "alia", "ydy7rnqd4gd3ho3mol7zetee2kdtr7rahmonps26zpdxmdqjo4ia"),
    ("email", "aliya.k@mail.kz", "djx2kdvhaetvzcdby3nupi2t6uzjvlgqtklfhnfznk6ckjciwpfa"),
    ("passport", "N12345678", "htge5wlwgskgkl6mcsglpd2rbpykyi4yi5hcn4jzwppp5tieobrq"),
    ("id_card", "012345678", "klt22itn434slle37himncj3gz7k3yaaclolgdgq4xhstltdzwna"),
])
def test_pseudonym_of_each_kind(kind: str, canonical: str, expected: str) -> None:
    assert pseudonym(RING.subkey(kind), canonical.encode()) == expected


def test_the_invalid_marker_is_pinned() -> None:
    assert pseudonym(RING.subkey("invalid/iin"), b"900101300127", 26) == "4nxmbhx7t6ne2yt6ixvc7v27vc"


@pytest.mark.parametrize("spelling", ["900101300126", " 9001-0130-0126 ", "9001 0130 0126"])
def test_a_persons_row_through_the_plan(demo, spelling: str) -> None:
    plan = TablePlan(demo.table("population.persons"), RING)
    row = {"person_id": 1, "iin": spelling, "last_name": "A", "first_name": "B", "middle_name": None,
           "birth_date": 5479, "sex": "F", "phone": "+7 701 234 56 78", "address": None, "kato_code": "751110000",
           "status": "active", "updated_at": "2024-01-15T10:30:00Z"}
    record, defects = plan.apply(row, today=date(2024, 1, 15))
    assert record["iin_hash"] == "ktn6vj44vsxdok3nd4as2zlsdwus557mzqgt43su2vopmhnrqosq"
    assert record["phone_hash"] == "5xps7nfkrj2xgsbuckzmwjdevmgmd3mju3zhpouumc3veoj7yd4q"
    assert defects == []


def test_an_invalid_iin_through_the_plan(demo) -> None:
    plan = TablePlan(demo.table("population.persons"), RING)
    row = {"person_id": 1, "iin": "900101300127", "last_name": "A", "first_name": "B", "middle_name": None,
           "birth_date": 5479, "sex": "F", "phone": None, "address": None, "kato_code": "751110000",
           "status": "active", "updated_at": "2024-01-15T10:30:00Z"}
    record, defects = plan.apply(row, today=date(2024, 1, 15))
    assert record["iin_hash"] == "invalid:4nxmbhx7t6ne2yt6ixvc7v27vc"
    assert [d.problem for d in defects] == ["not a valid iin"]
