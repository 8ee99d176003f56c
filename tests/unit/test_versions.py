"""`_version` from the raw offset (streams/versions.py): commit order, above every older scheme."""
from __future__ import annotations

import pytest

from streams.versions import CDC_BASE, raw_event_version


def test_versions_follow_offsets() -> None:
    offsets = [0, 1, 2, 17, 1_000_000, 10**12]
    versions = [raw_event_version(o) for o in offsets]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)


def test_every_version_lies_above_the_older_schemes() -> None:
    lsn_of_a_busy_server = 0x0000_FFFF_FFFF_FFFF   # 256 TiB of WAL
    marker_micros_in_2299 = 10_418_000_000_000_000
    assert raw_event_version(0) > max(lsn_of_a_busy_server, marker_micros_in_2299, 0)
    assert raw_event_version(0) == CDC_BASE


def test_versions_fit_an_avro_long() -> None:
    assert raw_event_version((1 << 62) - 1) == (1 << 63) - 1
    with pytest.raises(ValueError, match="outside"):
        raw_event_version(1 << 62)
    with pytest.raises(ValueError, match="outside"):
        raw_event_version(-1)
