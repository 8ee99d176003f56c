"""Values of PostgreSQL types in their three forms, shared by the tests of the text parser
(test_pg_text.py) and the Debezium encoder (test_debezium_encode.py)."""
from __future__ import annotations

import math

# Text forms and the Debezium form (historical loads, the marker poller):
# (declared, text as COPY ... CSV / psql prints it, what Debezium sends for the same datum)
TEXT_AND_DEBEZIUM = [
    ("money", "$1,234.56", "1234.56"), ("money", "-$1,234.56", "-1234.56"), ("money", "($0.01)", "-0.01"),
    ("money", "-$92,233,720,368,547,758.08", "-92233720368547758.08"), ("money", "1234.5", "1234.50"),
    ("money", "$92,233,720,368,547,758.07", "92233720368547758.07"),
    ("time", "24:00:00", 86_400_000_000), ("time", "00:00:00", 0), ("time", "12:34:56.789012", 45_296_789_012),
    ("time", "10:15", 36_900_000_000), ("time(3)", "12:34:56.7895", 45_296_790_000),
    ("time(0)", "23:59:59.5", 86_400_000_000),                 # PostgreSQL rounds into 24:00:00
    ("timetz", "10:15:30.123456+06", "04:15:30.123456Z"), ("timetz", "23:30:00-05", "04:30:00Z"),
    ("timetz", "10:15:30+05:30", "04:45:30Z"), ("time with time zone", "00:00:00+00", "00:00:00Z"),
    ("interval", "1 year 2 mons 3 days 04:05:06.78", "P1Y2M3DT4H5M6.78S"),
    ("interval", "-1 years -2 mons +3 days -04:05:06.78", "P-1Y-2M3DT-4H-5M-6.78S"),
    ("interval", "00:00:00", "P0Y0M0DT0H0M0S"), ("interval", "3 days", "P0Y0M3DT0H0M0S"),
    ("interval", "1 day -00:00:01", "P0Y0M1DT0H0M-1S"), ("interval", "-00:00:00.000001", "P0Y0M0DT0H0M-0.000001S"),
    ("interval", "1 mon -30 days", "P0Y1M-30DT0H0M0S"), ("interval", "P1Y2M3DT4H5M6.78S", "P1Y2M3DT4H5M6.78S"),
    ("interval", "2562047788:00:54.775807", "P0Y0M0DT2562047788H0M54.775807S"),
    ("interval(0)", "00:00:01.5", "P0Y0M0DT0H0M2S"), ("interval(0)", "-00:00:01.5", "P0Y0M0DT0H0M-2S"),
    ("bytea", "\\x00ff80", "AP+A"), ("bytea", "\\x", ""), ("bytea", "a\\000\\\\b", "YQBcYg=="),
    ("bytea", "Алматы", "0JDQu9C80LDRgtGL"),
    ("enum(active, 'in progress')", "in progress", "in progress"), ("enum", "Любой", "Любой"),
    ("inet", "192.168.1.5/24", "192.168.1.5/24"), ("inet", "192.168.1.5/32", "192.168.1.5"),
    ("inet", "2001:0DB8:0000:0000::1/128", "2001:db8::1"), ("inet", "2001:db8::1/64", "2001:db8::1/64"),
    ("inet", "::ffff:1.2.3.4", "::ffff:1.2.3.4"), ("inet", "::1.2.3.4/120", "::1.2.3.4/120"),
    ("inet", "2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"), ("inet", "::1", "::1"),
    ("cidr", "10.0.0.0/8", "10.0.0.0/8"), ("cidr", "192.168.1.5", "192.168.1.5/32"),
    ("cidr", "2001:db8::/32", "2001:db8::/32"),
    ("macaddr", "08-00-2B-01-02-03", "08:00:2b:01:02:03"), ("macaddr", "0800.2b01.0203", "08:00:2b:01:02:03"),
    ("macaddr", "08002b:010203", "08:00:2b:01:02:03"), ("macaddr", "08002b010203", "08:00:2b:01:02:03"),
    ("macaddr8", "08:00:2b:01:02:03:04:05", "08:00:2b:01:02:03:04:05"),
    ("macaddr8", "08:00:2b:01:02:03", "08:00:2b:ff:fe:01:02:03"),
    ("int[]", "{1,NULL,-3}", [1, None, -3]), ("int[]", "{}", []), ("_int8", "{ 1 , 2 }", [1, 2]),
    ("text[]", '{a,"b c",NULL,"NULL","x\\"y","",\\,}', ["a", "b c", None, "NULL", 'x"y', "", ","]),
    ("varchar(3)[]", '{abc,"Әлі"}', ["abc", "Әлі"]),
    ("numeric(12,2)[]", "{1.5,NULL,-0.01}", ["1.50", None, "-0.01"]),
    ("uuid[]", "{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}", ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]),
    ("date[]", "{1900-01-01,2299-12-31}", [-25567, 120529]),
    ("timestamptz[]", '{"1970-01-01 06:00:00+06",NULL}', ["1970-01-01T00:00:00+00:00", None]),
    ("boolean[]", "{t,f,NULL}", [True, False, None]),
    ("bytea[]", '{"\\\\x00ff",NULL}', ["AP8=", None]),
    ("time[]", "{24:00:00,NULL}", [86_400_000_000, None]),
    ("date", "1900-01-01", -25567), ("date", "2299-12-31", 120529),
    ("timestamp", "1900-01-01 00:00:00", -2_208_988_800_000_000),
    ("timestamp", "2299-12-31 23:59:59.999999", 10_413_791_999_999_999),
    ("timestamptz", "2100-06-30 12:00:00+06", "2100-06-30T06:00:00Z"),
    ("timestamptz", "1969-07-20 20:17:40+00", "1969-07-20T20:17:40Z"),
]


MICROS = 1_705_314_600_123_456  # 2024-01-15T10:30:00.123456Z


# The text forms historical files hold (qoima load-history): decimal commas, DD.MM.YYYY dates,
# padded and signed numbers. (declared type, text in a file, what Debezium sends for the datum)
HISTORY_TEXT_FORMS = [
    ("smallint", "42", 42), ("smallint", " -7 ", -7), ("int2", "-32768", -32768),
    ("integer", "2147483647", 2147483647), ("int4", "+5", 5),
    ("bigint", "9000000000", 9_000_000_000), ("int8", "-1", -1),
    ("numeric(14,2)", "48500.5", "48500.5"), ("numeric(14,2)", "48500,50", "48500.50"),
    ("numeric(14,2)", "-0.10", "-0.10"), ("numeric(10,0)", "1e3", "1000"), ("decimal(20,6)", ".000001", "0.000001"),
    ("real", "1.1", 1.1), ("float4", "16777217", 16777216.0), ("real", "NaN", "NaN"), ("real", "-Infinity", "-Infinity"),
    ("double precision", "2.5", 2.5), ("float8", "1e-3", 0.001), ("float8", "inf", "Infinity"),
    ("boolean", "t", True), ("boolean", "false", False), ("bool", "1", True), ("bool", " 0 ", False),
    ("boolean", "TRUE", True),
    ("text", "Алматы", "Алматы"), ("text", " spaced ", " spaced "),
    ("varchar(9)", "751110000", "751110000"), ("character varying(3)", "ab  ", "ab "),
    ("char(12)", "850101300124", "850101300124"), ("char(3)", "ab", "ab "), ("character(1)", "F", "F"), ("bpchar(2)", "x", "x "),
    ("date", "2024-01-01", 19723), ("date", "01.01.2024", 19723), ("date", "1969-12-31", -1),
    ("date", "01.01.1900", -25567),
    ("timestamp", "2024-01-15 10:30:00.123456", MICROS), ("timestamp(6)", "2024-01-15T10:30:00.123456", MICROS),
    ("timestamp(4)", "2024-01-15 10:30:00.12345", MICROS + 44),  # four digits kept: .1235
    ("timestamp(3)", "2024-01-15 10:30:00.123", MICROS // 1000), ("timestamp(3)", "2024-01-15 10:30:00.1235", (MICROS + 544) // 1000),
    ("timestamp(0)", "15.01.2024 10:30:00", 1_705_314_600_000), ("timestamp", "1969-12-31 23:59:59.999999", -1),
    ("timestamptz", "2024-01-15 16:30:00.123456+06", "2024-01-15T10:30:00.123456Z"),
    ("timestamptz", "2024-01-15T10:30:00.123456Z", "2024-01-15T10:30:00.123456Z"),
    ("timestamp with time zone", "2024-01-15 05:30:00.123456-05:00", "2024-01-15T10:30:00.123456Z"),
    ("timestamptz", "15.01.2024 16:00:00.123456+05:30", "2024-01-15T10:30:00.123456Z"),
    ("timestamptz", "2024-01-15 10:30:00.1234564 UTC", "2024-01-15T10:30:00.123456Z"),
    ("uuid", "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    ("uuid", "{a0eebc999c0b4ef8bb6d6bb9bd380a11}", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    ("json", '{"b": 1,  "a": [2]}', '{"b": 1,  "a": [2]}'),
    ("jsonb", '{"bb":1,"a":[1.50,1e2,"ä\\n"],"bb":2}', '{"a": [1.50, 100, "ä\\n"], "bb": 2}'),
]


def same(left, right) -> bool:
    """Equal, of the same type and spelled the same (Decimal('1.50') is not Decimal('1.5')); NaN equals NaN."""
    if isinstance(left, list):
        return isinstance(right, list) and len(left) == len(right) and all(map(same, left, right))
    if isinstance(left, float) and math.isnan(left):
        return isinstance(right, float) and math.isnan(right)
    return left == right and type(left) is type(right) and str(left) == str(right)
