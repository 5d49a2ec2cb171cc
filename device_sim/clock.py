"""Time for simulated devices: injected, so tests drive it by hand.

The simulator does not import `hub.*` (a mistake shared with the hub could hide),
so it has its own small clock types with the same shape as `hub.clock.Clock`.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Unix seconds (UTC)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""


class SystemClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock the test moves by hand."""

    def __init__(self, start: float = 1_764_400_000.0) -> None:
        self._now = start
        self._mono = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds
            self._mono += seconds


class SceneClock:
    """The scene's clock: `start + (base.now() - t0) * scale`.

    Only the picture (daylight, overlay) follows it; wire timestamps stay on the
    device clock so the hub can trust them.
    """

    def __init__(self, base: Clock, scale: float = 1.0, start: float | None = None) -> None:
        if scale <= 0:
            raise ValueError("time scale must be > 0")
        self.base = base
        self.scale = scale
        self._t0 = base.now()
        self._start = self._t0 if start is None else start

    def now(self) -> float:
        return self._start + (self.base.now() - self._t0) * self.scale
