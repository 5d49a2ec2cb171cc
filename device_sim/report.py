"""The simulator's own figures: CPU, memory, connections and achieved rates."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psutil

from device_sim.device import Stats


class RateReporter:
    """`sample()` → a dict of totals and per-second rates since the previous sample."""

    def __init__(self, stats: Stats, connected: Callable[[], int], total: int) -> None:
        self.stats = stats
        self.connected = connected
        self.total = total
        self.proc = psutil.Process()
        self.proc.cpu_percent(None)
        self._t = time.monotonic()
        self._last = self._snapshot()

    def _snapshot(self) -> dict[str, float]:
        s = self.stats
        return {"heartbeat": s.published["heartbeat"], "snapshot": s.published["snapshot"],
                "event": s.published["event"], "ack": s.published["ack"],
                "bytes": s.bytes_out, "connects": s.connects}

    def sample(self) -> dict[str, Any]:
        now = time.monotonic()
        dt = max(1e-6, now - self._t)
        cur = self._snapshot()
        rates = {f"{k}_per_s": round((cur[k] - self._last[k]) / dt, 1) for k in cur}
        self._t, self._last = now, cur
        mem = self.proc.memory_info().rss
        return {
            "devices": self.total,
            "connected": self.connected(),
            "cpu_pct": self.proc.cpu_percent(None),
            "rss_mb": round(mem / 2**20, 1),
            "threads": self.proc.num_threads(),
            "fds": self.proc.num_fds(),
            **rates,
            "totals": {**{k: int(v) for k, v in cur.items()},
                       "connect_failures": self.stats.connect_failures,
                       "disconnects": self.stats.disconnects,
                       "heartbeats_dropped": self.stats.published["heartbeat_dropped"],
                       "renders_skipped": self.stats.renders_skipped,
                       "commands": self.stats.commands},
        }
