"""Quiet hours: a nightly window in local time when routine broadcasts wait (pure).

Apart from the broadcasts package so that settings can type `VH_BROADCAST_QUIET_HOURS`
without importing the broadcast service.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time


class QuietHoursError(ValueError):
    """Quiet hours that are not two HH:MM times."""


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A nightly window in local time; `start == end` means none. May span midnight."""

    start: time = time(22, 0)
    end: time = time(6, 0)

    @classmethod
    def parse(cls, start: str, end: str) -> QuietHours:
        try:
            return cls(time.fromisoformat(start), time.fromisoformat(end))
        except ValueError:
            raise QuietHoursError(f"quiet hours need HH:MM times, got {start!r}–{end!r}") from None

    @property
    def disabled(self) -> bool:
        return self.start == self.end

    def contains(self, local: time) -> bool:
        if self.disabled:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end
