"""Synthetic rows for the demo source database: persons, organizations, social payments.

Every function is deterministic given its `random.Random` (and `today`, where taken), so a
seed reproduces a data set. Rows are dicts keyed by column name, plus one extra key,
`_defect`: None for a clean row, else the kind of deliberate data-quality defect the row
carries (one of PERSON_DEFECTS, ORGANIZATION_DEFECTS, PAYMENT_DEFECTS). Keys starting with
"_" are not columns; the database code writes only real columns. A row carries at most one defect, with
probability `defect_rate`.

A missing middle name (NULL or '') and a missing phone (NULL) are not defects: many Kazakhs
have no patronymic and not everyone leaves a phone number.
"""
from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

from model.identifiers import check_digit

Row = dict[str, Any]

PERSON_DEFECTS = ("bad_iin_check_digit", "null_kato", "bad_phone", "future_birth_date")
ORGANIZATION_DEFECTS = ("bad_bin_check_digit", "null_kato")
PAYMENT_DEFECTS = ("negative_amount", "orphan_person_iin")

PERSON_STATUSES = ("active", "deceased", "emigrated")
PAYMENT_STATUSES = ("pending", "paid", "returned", "cancelled")

# Kazakhstan has been on a single UTC+5 time zone since March 2024.
KZ_TZ = timezone(timedelta(hours=5), "Asia/Almaty")

# (KATO code, Russian name, Kazakh name, relative population weight)
_CITIES = (
    ("751110000", "Алматы", "Алматы", 22),
    ("711110000", "Астана", "Астана", 14),
    ("791610000", "Шымкент", "Шымкент", 12),
    ("111010000", "Кокшетау", "Көкшетау", 2),
    ("151010000", "Актобе", "Ақтөбе", 6),
    ("231010000", "Атырау", "Атырау", 3),
    ("271010000", "Уральск", "Орал", 3),
    ("311010000", "Тараз", "Тараз", 4),
    ("351010000", "Караганда", "Қарағанды", 5),
    ("391010000", "Костанай", "Қостанай", 3),
    ("431010000", "Кызылорда", "Қызылорда", 3),
    ("471010000", "Актау", "Ақтау", 3),
    ("551010000", "Павлодар", "Павлодар", 3),
    ("591010000", "Петропавловск", "Петропавл", 2),
    ("631010000", "Усть-Каменогорск", "Өскемен", 3),
)
KATO: dict[str, str] = {code: ru for code, ru, _, _ in _CITIES}
_KATO_KK = {code: kk for code, _, kk, _ in _CITIES}
_KATO_CODES = tuple(KATO)
_KATO_WEIGHTS = tuple(weight for *_, weight in _CITIES)

_KZ_MALE = (
    "Әлібек", "Ғалымжан", "Қайрат", "Нұрлан", "Өмірзақ", "Мұхтар", "Дәурен", "Ерлан",
    "Асқар", "Бауыржан", "Ержан", "Серік", "Болат", "Данияр", "Нұрсұлтан", "Арман",
    "Айбек", "Бекзат", "Ерболат", "Жандос", "Қанат", "Мақсат", "Талғат", "Ілияс",
    "Әділет", "Ақылбек", "Жасұлан", "Рүстем", "Сұлтан", "Темірлан", "Шыңғыс", "Ғабит",
    "Жаһангер", "Нұрбек", "Есен", "Сәкен", "Төлеген", "Үсен", "Мейірхан", "Абай",
)
_KZ_FEMALE = (
    "Айгүл", "Үміт", "Шұғыла", "Іңкәр", "Жансая", "Әсем", "Ақерке", "Гүлнар",
    "Динара", "Әйгерім", "Аружан", "Мөлдір", "Сәуле", "Жұлдыз", "Ботагөз", "Қарлығаш",
    "Назерке", "Айнұр", "Гүлжан", "Балжан", "Дана", "Мадина", "Сымбат", "Томирис",
    "Інжу", "Нұргүл", "Ләззат", "Меруерт", "Шаһизада", "Ұлжан", "Құралай", "Әлия",
    "Гүлмира", "Салтанат", "Жанар", "Күләш", "Айша", "Дильназ", "Ақмарал", "Бибігүл",
)
# Russian given name -> (patronymic of a son, patronymic of a daughter)
_RU_MALE = {
    "Иван": ("Иванович", "Ивановна"),
    "Сергей": ("Сергеевич", "Сергеевна"),
    "Алексей": ("Алексеевич", "Алексеевна"),
    "Дмитрий": ("Дмитриевич", "Дмитриевна"),
    "Андрей": ("Андреевич", "Андреевна"),
    "Николай": ("Николаевич", "Николаевна"),
    "Владимир": ("Владимирович", "Владимировна"),
    "Михаил": ("Михайлович", "Михайловна"),
    "Евгений": ("Евгеньевич", "Евгеньевна"),
    "Павел": ("Павлович", "Павловна"),
    "Виктор": ("Викторович", "Викторовна"),
    "Александр": ("Александрович", "Александровна"),
}
_RU_FEMALE = (
    "Анна", "Елена", "Ольга", "Наталья", "Татьяна", "Ирина", "Светлана", "Мария",
    "Екатерина", "Юлия", "Людмила", "Галина",
)
_RU_MALE_NAMES = tuple(_RU_MALE)
MALE_FIRST_NAMES = _KZ_MALE + _RU_MALE_NAMES
FEMALE_FIRST_NAMES = _KZ_FEMALE + _RU_FEMALE

# Male forms; the female form appends "а" (Қасымов -> Қасымова, Никитин -> Никитина).
_KZ_SURNAMES = (
    "Қасымов", "Сүлейменов", "Әбенов", "Жақсыбеков", "Тоқаев", "Құнаев", "Жұмабаев",
    "Серікбаев", "Ахметов", "Оспанов", "Нұрғалиев", "Әбдірахманов", "Төлегенов",
    "Бекмұхамбетов", "Мұқанов", "Есенов", "Ғабдуллин", "Исаев", "Сәрсенбаев", "Омаров",
    "Қожахметов", "Жүсіпов", "Байжанов", "Дүйсенбаев", "Үсенов", "Өтебаев", "Ілиясов",
    "Шәріпов", "Ертаев", "Қалиев", "Мамыров", "Рахымжанов", "Смағұлов",
)
_RU_SURNAMES = (
    "Иванов", "Петров", "Сидоров", "Смирнов", "Кузнецов", "Попов", "Васильев", "Соколов",
    "Михайлов", "Новиков", "Фёдоров", "Морозов", "Волков", "Лебедев", "Козлов", "Павлов",
    "Семёнов", "Егоров", "Никитин",
)
# Korean and Ukrainian surnames common in Kazakhstan, the same for both sexes.
_INVARIANT_SURNAMES = ("Ким", "Пак", "Цой", "Шевченко", "Бондаренко")

_RU_STREETS = (
    "ул. Абая", "пр. Республики", "ул. Толе би", "ул. Сатпаева", "ул. Пушкина",
    "ул. Байтурсынова", "ул. Кенесары", "ул. Жамбыла", "пр. Абылай хана", "ул. Гоголя",
    "ул. Желтоксан", "ул. Момышулы",
)
_KK_STREETS = (
    "Абай даңғылы", "Мәңгілік Ел даңғылы", "Төле би көшесі", "Сәтбаев көшесі",
    "Қабанбай батыр даңғылы", "Тұран даңғылы", "Бейбітшілік көшесі", "Кенесары көшесі",
    "Жамбыл көшесі", "Әл-Фараби даңғылы", "Желтоқсан көшесі", "Байтұрсынұлы көшесі",
)

OPERATOR_CODES = ("700", "701", "702", "705", "707", "708", "747", "771", "775", "776", "777", "778")
_CODES_WITH_ZERO = tuple(code for code in OPERATOR_CODES if "0" in code)

# payment type -> (weight, lowest amount, highest amount) in tenge
_PAYMENT_KINDS = {
    "pension": (35, 60_000, 250_000),
    "child_benefit": (30, 5_000, 60_000),
    "disability": (12, 30_000, 150_000),
    "unemployment": (10, 20_000, 100_000),
    "housing": (13, 3_000, 30_000),
}
PAYMENT_TYPES = tuple(_PAYMENT_KINDS)
_PAYMENT_TYPE_WEIGHTS = tuple(weight for weight, _, _ in _PAYMENT_KINDS.values())
_PAYMENT_STATUS_WEIGHTS = (15, 75, 4, 6)  # aligned with PAYMENT_STATUSES


def make_iin(rng: random.Random, birth_date: date, sex: str) -> str:
    """A valid IIN for someone born on `birth_date` of sex 'M' or 'F'."""
    century = birth_date.year // 100 - 18  # 0: 1800s, 1: 1900s, 2: 2000s
    if sex not in ("M", "F") or not 0 <= century <= 2:
        raise ValueError("IIN needs sex 'M' or 'F' and a birth year in 1800-2099")
    prefix = f"{birth_date:%y%m%d}{1 + 2 * century + (sex == 'F')}"
    return _with_check_digit(rng, prefix, serial_digits=4)


def make_bin(rng: random.Random, reg_date: date) -> str:
    """A valid BIN for an entity registered on `reg_date`; mostly resident legal entities."""
    entity_type = rng.choices("456", weights=(90, 3, 7))[0]
    attribute = rng.choices("0123", weights=(80, 15, 4, 1))[0]
    return _with_check_digit(rng, f"{reg_date:%y%m}{entity_type}{attribute}", serial_digits=5)


def _with_check_digit(rng: random.Random, prefix: str, serial_digits: int) -> str:
    # Some 11-digit prefixes have no valid check digit (never issued): draw another serial.
    while True:
        first11 = prefix + f"{rng.randrange(10**serial_digits):0{serial_digits}d}"
        digit = check_digit(first11)
        if digit is not None:
            return first11 + str(digit)


def _break_check_digit(rng: random.Random, value: str) -> str:
    return value[:11] + str((int(value[11]) + rng.randint(1, 9)) % 10)


def make_phone(rng: random.Random, *, malformed: bool = False) -> str:
    """A Kazakh mobile number spelled the various ways real systems store them.

    With `malformed`, a number no normaliser can repair: too short, truncated, or with the
    letter O typed for a zero.
    """
    code = rng.choice(OPERATOR_CODES)
    n = f"{rng.randrange(10**7):07d}"
    if malformed:
        typo_code = rng.choice(_CODES_WITH_ZERO).replace("0", "O")
        return rng.choice((
            n[:5],
            f"+7 ({typo_code}) {n[:3]}-{n[3:5]}-{n[5:]}",
            f"+7 {code} {n[:3]} {n[3:5]}",
        ))
    return rng.choice((
        f"+7 {code} {n[:3]} {n[3:5]} {n[5:]}",
        f"8{code}{n}",
        f"+7{code}{n}",
        f"8({code}){n[:3]}-{n[3:5]}-{n[5:]}",
        f"8 ({code}) {n[:3]} {n[3:]}",
    ))


def make_kato(rng: random.Random) -> str:
    """A KATO code from KATO, weighted by city population."""
    return rng.choices(_KATO_CODES, weights=_KATO_WEIGHTS)[0]


def make_address(rng: random.Random, kato: str) -> str:
    """A street address in the city of `kato`, written in Russian or in Kazakh."""
    house = rng.randint(1, 250)
    flat = rng.randint(1, 300) if rng.random() < 0.7 else None
    if rng.random() < 0.6:
        if rng.random() < 0.2:
            street = f"мкр. {rng.randint(1, 12)}"
        else:
            street = rng.choice(_RU_STREETS)
        address = f"г. {KATO[kato]}, {street}, д. {house}"
        return address if flat is None else f"{address}, кв. {flat}"
    if rng.random() < 0.2:
        street = f"{rng.randint(1, 12)} шағын аудан"
    else:
        street = rng.choice(_KK_STREETS)
    if flat is None:
        return f"{_KATO_KK[kato]} қ., {street}, {house}"
    return f"{_KATO_KK[kato]} қ., {street}, {house}-үй, {flat}-пәтер"


def make_person(rng: random.Random, *, defect_rate: float = 0.02, today: date | None = None) -> Row:
    """A population.persons row (without person_id and updated_at) plus `_defect`."""
    today = today or date.today()
    defect = _pick_defect(rng, defect_rate, PERSON_DEFECTS)
    sex = rng.choice("MF")
    last_name, first_name, middle_name = _make_full_name(rng, sex)
    birth_date = today - timedelta(days=int(rng.triangular(0, 90, 32) * 365.25))
    iin = make_iin(rng, birth_date, sex)
    kato = make_kato(rng)
    row: Row = {
        "iin": iin,
        "last_name": last_name,
        "first_name": first_name,
        "middle_name": middle_name,
        "birth_date": birth_date,
        "sex": sex,
        "phone": make_phone(rng) if rng.random() < 0.92 else None,
        "address": make_address(rng, kato),
        "kato_code": kato,
        "status": rng.choices(PERSON_STATUSES, weights=(96, 3, 1))[0],
        "_defect": defect,
    }
    if defect == "bad_iin_check_digit":
        row["iin"] = _break_check_digit(rng, iin)
    elif defect == "null_kato":
        row["kato_code"] = None
    elif defect == "bad_phone":
        row["phone"] = make_phone(rng, malformed=True)
    elif defect == "future_birth_date":
        # A century typo (1985 -> 2085); the IIN keeps the true date, as it would in reality.
        row["birth_date"] = _plus_100_years(birth_date)
    return row


def _make_full_name(rng: random.Random, sex: str) -> tuple[str, str, str | None]:
    male = sex == "M"
    roll = rng.random()
    if roll < 0.70:  # Kazakh
        first = rng.choice(_KZ_MALE if male else _KZ_FEMALE)
        father = rng.choice(_KZ_MALE)
        patronymic = father + ("ұлы" if male else "қызы")
        if rng.random() < 0.15:
            # Surname formed from the father's name; no separate patronymic then.
            return patronymic, first, rng.choice((None, ""))
        surname = _gendered(rng.choice(_KZ_SURNAMES), male)
    else:  # Russian, or a Korean/Ukrainian family with Russian given names
        first = rng.choice(_RU_MALE_NAMES if male else _RU_FEMALE)
        patronymic = _RU_MALE[rng.choice(_RU_MALE_NAMES)][0 if male else 1]
        if roll < 0.95:
            surname = _gendered(rng.choice(_RU_SURNAMES), male)
        else:
            surname = rng.choice(_INVARIANT_SURNAMES)
    if rng.random() < 0.08:
        return surname, first, rng.choice((None, ""))
    return surname, first, patronymic


def _gendered(male_surname: str, male: bool) -> str:
    return male_surname if male else male_surname + "а"


def _plus_100_years(d: date) -> date:
    try:
        return d.replace(year=d.year + 100)
    except ValueError:  # 29 February in a year whose +100 is not leap
        return d.replace(year=d.year + 100, day=28)


def make_organization(rng: random.Random, *, defect_rate: float = 0.02) -> Row:
    """A social.organizations row (without org_id and updated_at) plus `_defect`."""
    defect = _pick_defect(rng, defect_rate, ORGANIZATION_DEFECTS)
    kato = make_kato(rng)
    ru, kk = KATO[kato], _KATO_KK[kato]
    name = rng.choice((
        f"ГУ «Управление занятости и социальных программ г. {ru}»",
        f"КГУ «Центр занятости населения г. {ru}»",
        f"Филиал НАО «Государственная корпорация «Правительство для граждан»» по г. {ru}",
        f"РГУ «Департамент Комитета труда и социальной защиты по г. {ru}»",
        f"«{kk} қаласының жұмыспен қамту орталығы» КММ",
        f"«{kk} қаласының жұмыспен қамту және әлеуметтік бағдарламалар басқармасы» ММ",
        f"«„Азаматтарға арналған үкімет“ мемлекеттік корпорациясы» КЕАҚ-ның {kk} қаласы бойынша филиалы",
    ))
    reg_date = date(1996, 1, 1) + timedelta(days=rng.randrange(28 * 365))
    row: Row = {"bin": make_bin(rng, reg_date), "name": name, "kato_code": kato, "_defect": defect}
    if defect == "bad_bin_check_digit":
        row["bin"] = _break_check_digit(rng, row["bin"])
    elif defect == "null_kato":
        row["kato_code"] = None
    return row


def make_payment(
    rng: random.Random,
    person_iin: str,
    org_bin: str,
    *,
    kato_code: str | None = None,
    defect_rate: float = 0.02,
    today: date | None = None,
) -> Row:
    """A social.payments row (without payment_id and updated_at) plus `_defect`.

    `kato_code` is the recipient's region as the register holds it (the demo rule
    region_agrees_with_register compares the two). The `orphan_person_iin` defect replaces
    `person_iin` with a valid IIN nobody was generated with; a clash with a registered one is
    astronomically unlikely.
    """
    today = today or date.today()
    defect = _pick_defect(rng, defect_rate, PAYMENT_DEFECTS)
    payment_type = rng.choices(PAYMENT_TYPES, weights=_PAYMENT_TYPE_WEIGHTS)[0]
    _, low, high = _PAYMENT_KINDS[payment_type]
    amount = Decimal(rng.randint(low * 100, high * 100)).scaleb(-2)
    # Periods are whole past months, so a payment date inside the period is never in the future.
    months_ago = rng.randint(1, 24)
    month_index = today.year * 12 + today.month - 1 - months_ago
    period = date(month_index // 12, month_index % 12 + 1, 1)
    status = rng.choices(PAYMENT_STATUSES, weights=_PAYMENT_STATUS_WEIGHTS)[0]
    paid_at = None
    if status in ("paid", "returned"):
        paid_at = datetime.combine(
            period + timedelta(days=rng.randint(2, 25)),
            time(rng.randint(9, 18), rng.randrange(60), rng.randrange(60)),
            tzinfo=KZ_TZ,
        )
    if defect == "negative_amount":
        amount = -amount
    elif defect == "orphan_person_iin":
        born = date(1940, 1, 1) + timedelta(days=rng.randrange(80 * 365))
        person_iin = make_iin(rng, born, rng.choice("MF"))
    return {
        "person_iin": person_iin,
        "org_bin": org_bin,
        "payment_type": payment_type,
        "amount": amount,
        "period": period,
        "status": status,
        "paid_at": paid_at,
        "kato_code": kato_code,
        "_defect": defect,
    }


def _pick_defect(rng: random.Random, defect_rate: float, kinds: tuple[str, ...]) -> str | None:
    return rng.choice(kinds) if rng.random() < defect_rate else None
