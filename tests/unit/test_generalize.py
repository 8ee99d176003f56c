"""Generalizers (streams/depersonalize.py): quasi-identifiers become values many people share."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from model.reference import kato_region
from streams.depersonalize import address_region, age_band, postcode_region

TODAY = date(2024, 6, 15)


# --- age bands ------------------------------------------------------------------------------


@pytest.mark.parametrize(("birth", "band"), [
    (date(2024, 6, 15), "0-9"),          # born today
    (date(2014, 6, 16), "0-9"),          # 9, turns 10 tomorrow
    (date(2014, 6, 15), "10-19"),        # 10 today
    (date(1994, 6, 16), "20-29"),        # 29
    (date(1994, 6, 15), "30-39"),        # 30 today
    (date(1985, 1, 1), "30-39"),
    (date(1984, 6, 15), "40-49"),
    (date(1944, 6, 16), "70-79"),        # 79
    (date(1944, 6, 15), "80+"),          # 80 today
    (date(1900, 1, 1), "80+"),
])
def test_age_band_boundaries(birth: date, band: str) -> None:
    assert age_band(birth, TODAY) == band


def test_age_band_leap_day_birthday() -> None:
    # Born on 29 February: a year older from 1 March in common years.
    assert age_band(date(1996, 2, 29), date(2026, 2, 28)) == "20-29"
    assert age_band(date(1996, 2, 29), date(2026, 3, 1)) == "30-39"


def test_age_band_from_a_timestamp() -> None:
    born = datetime(1994, 6, 15, 23, 0, tzinfo=timezone.utc)
    assert age_band(born, TODAY) == "30-39"


def test_birth_after_reference_date_is_none() -> None:
    assert age_band(date(2024, 6, 16), TODAY) is None


# --- KATO -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "region"), [("751110000", "75"), (" 711210000 ", "71"), ("100000000", "10")])
def test_kato_region(code: str, region: str) -> None:
    assert kato_region(code) == region


@pytest.mark.parametrize("code", ["75", "7511100000", "75111000O", "75 111 0000", ""])
def test_kato_region_invalid(code: str) -> None:
    assert kato_region(code) is None


# --- postcodes ------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "region"), [
    ("A01P3K4", "A"),          # Almaty city (Kazpost since 2015: letter, 2 digits, 4 characters)
    ("A01 P3K4", "A"),
    ("x41d8m0", "X"),          # Turkestan region, lower case
    (" Z05T3E0 ", "Z"),        # Astana
    ("050000", "old:05"),      # before 2015: 6 digits, the first two the region
    ("010000", "old:01"),
])
def test_postcode_region(code: str, region: str) -> None:
    assert postcode_region(code) == region


@pytest.mark.parametrize("code", [
    "A05E7H",       # six characters: not a Kazpost code
    "A0 1P3K4", "AA1P3K4", "05000", "0500000", "А01P3K4",  # Cyrillic А
    "A01P3K4X", "",
])
def test_postcode_region_invalid(code: str) -> None:
    assert postcode_region(code) is None


# --- addresses ------------------------------------------------------------------------------


@pytest.mark.parametrize(("address", "region"), [
    # cities of republican significance
    ("г. Алматы, ул. Абая 10, кв. 5", "75"),
    ("Алматы қ., Абай даңғылы 10", "75"),
    ("г.Алматы, Жетысуский р-н, мкр. Жетысу-2", "75"),
    ("Казахстан, г. Астана, пр. Мангилик Ел 8", "71"),
    ("Нұр-Сұлтан қаласы, Сарыарқа ауданы", "71"),
    ("в Астане", "71"),
    ("г. Шымкент, мкр. Нурсат", "79"),
    ("ЮКО, г. Шымкент", "79"),                        # before 2018 Shymkent was in South Kazakhstan
    # regions in Russian and Kazakh
    ("Акмолинская область, г. Кокшетау", "11"),
    ("Ақмола облысы, Бурабай ауданы", "11"),
    ("Актюбинская обл., Мугалжарский р-н", "15"),
    ("Ақтөбе облысы", "15"),
    ("Алматинская обл., Илийский р-н, пос. Отеген батыр, ул. Астана 5", "19"),
    ("Алматы облысы, Қонаев қ.", "19"),
    ("Атырауская обл., г. Кульсары", "23"),
    ("Западно-Казахстанская обл., г. Уральск", "27"),
    ("Батыс Қазақстан облысы, Орал қ.", "27"),
    ("ЗКО, Бурлинский р-н", "27"),
    ("Жамбылская область", "31"),
    ("г. Тараз, ул. Толе би 5", "31"),
    ("Жетісу облысы, Талдықорған қ.", "33"),
    ("Карагандинская обл., г. Темиртау", "35"),
    ("Қарағанды облысы", "35"),
    ("Костанайская область, г. Рудный", "39"),
    ("Қостанай қ.", "39"),
    ("Кызылординская обл.", "43"),
    ("Қызылорда облысы", "43"),
    ("Мангистауская обл., г. Актау, 14 мкр", "47"),
    ("Маңғыстау облысы, Жаңаөзен қ.", "47"),
    ("Павлодарская обл., г. Экибастуз", "55"),
    ("Северо-Казахстанская область, г. Петропавловск", "59"),
    ("СҚО, Петропавл қ.", "59"),
    ("Туркестанская обл., г. Кентау", "61"),
    ("Түркістан облысы", "61"),
    ("Ұлытау облысы, Жезқазған қ.", "62"),
    ("Восточно-Казахстанская обл., г. Усть-Каменогорск", "63"),
    ("Өскемен қ., Қазақстан көшесі 5", "63"),
    ("ВКО, Зайсанский р-н", "63"),
    ("Абай облысы, Аягөз ауданы", "10"),
    ("область Абай", "10"),
    # cities moved by the 2022 reform: the city wins over an old region name
    ("ВКО, г. Семей", "10"),
    ("Алматинская обл., г. Талдыкорган", "33"),
    ("Карагандинская обл., г. Жезказган", "62"),
    # streets and districts named after places do not count
    ("ул. Карагандинская 5, г. Астана", "71"),
    ("Астана көшесі 3, Алматы қ.", "75"),
    ("Алматы ауданы, Астана қ.", "71"),
    ("пр-т Абая 10, г. Павлодар", "55"),
    # upper case, ё
    ("Г. АЛМАТЫ", "75"),
    ("АҚТӨБЕ ҚАЛАСЫ", "15"),
])
def test_address_region(address: str, region: str) -> None:
    assert address_region(address) == region


@pytest.mark.parametrize("address", [
    "ул. Ленина 5, кв. 3",
    "общежитие для многодетных семей",     # 'семей' is not Semey without a city marker
    "ул. Абая 10",                          # Abai the poet, not Abai region
    "Москва, ул. Тверская 1",
    "",
])
def test_address_without_region(address: str) -> None:
    assert address_region(address) is None
