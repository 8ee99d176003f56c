"""The provider's minimum-load window (R394 Appendix 1's questionnaire): when a snapshot may read
its tables in bulk.

Written `HH:MM-HH:MM` in the provider's local time (`source.timezone`, Asia/Almaty unless the
regulation says otherwise: Kazakhstan keeps one time zone, UTC+5). A window whose end is before
its start runs over midnight (`22:00-05:00`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class LoadWindow:
    start: time
    end: time
    zone: ZoneInfo

    @classmethod
    def parse(cls, text: str, zone: str) -> "LoadWindow":
        """`text` as `HH:MM-HH:MM`; ValueError with the fix otherwise."""
        try:
            first, last = (time.fromisoformat(part) for part in text.split("-"))
        except ValueError:
            raise ValueError(f"min_load_window {text!r} is not HH:MM-HH:MM with valid times, e.g. 02:00-05:00") from None
        if first == last:
            raise ValueError(f"min_load_window {text!r} is empty: its start equals its end")
        return cls(first, last, ZoneInfo(zone))

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M} ({self.zone.key})"

    def contains(self, instant: datetime) -> bool:
        local = instant.astimezone(self.zone).time()
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end   # over midnight

    def opens_in(self, instant: datetime) -> timedelta:
        """How long until the window opens; zero inside it."""
        if self.contains(instant):
            return timedelta(0)
        local = instant.astimezone(self.zone)
        opening = datetime.combine(local.date(), self.start, self.zone)
        if opening <= local:
            opening += timedelta(days=1)
        return opening - local
