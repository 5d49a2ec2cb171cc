"""Street-light alarm rules (pure), evaluated periodically from the live state.

- `light:{id}:fault` — the heartbeat's `fault` is set (critical); cleared when it is null.
- `light:{id}:out_at_night` — at night (sunset + 30 min … sunrise − 30 min) a lamp in `auto`
  mode reports `on: false` (or level 0) in `OUT_AT_NIGHT_HEARTBEATS` heartbeats in a row
  (warning); cleared when it is lit, switched to manual, or the night ends.
- `light:{id}:battery_low` — `battery_pct` < `BATTERY_LOW_PCT` (warning), cleared at
  ≥ `BATTERY_OK_PCT` (hysteresis: a battery hovering at 20 % does not flap).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

OUT_AT_NIGHT_HEARTBEATS: Final = 2
BATTERY_LOW_PCT: Final = 20.0
BATTERY_OK_PCT: Final = 30.0

FAULT_LABELS: Final = {
    "led_open": "灯珠开路", "driver": "驱动故障", "overheat": "过热", "battery": "电池故障",
    "short": "短路", "sensor": "光照传感器故障",
}


@dataclass(frozen=True, slots=True)
class LampReading:
    """What the live state knows of one lamp (its latest heartbeat values)."""

    device_id: str
    name: str
    heartbeats: int  # heartbeats received so far (tells a new heartbeat from the same one)
    on: bool | None = None
    level: int | None = None
    mode: str | None = None
    fault: str | None = None
    battery_pct: float | None = None


@dataclass(slots=True)
class LampWatch:
    """Per-lamp memory between evaluations."""

    heartbeats_seen: int = 0
    dark_streak: int = 0


@dataclass(frozen=True, slots=True)
class AlarmChange:
    key: str
    action: Literal["raise", "clear"]
    type: str = ""
    severity: str = "warning"
    message: str = ""


def fault_key(device_id: str) -> str:
    return f"light:{device_id}:fault"


def out_key(device_id: str) -> str:
    return f"light:{device_id}:out_at_night"


def battery_key(device_id: str) -> str:
    return f"light:{device_id}:battery_low"


def evaluate(r: LampReading, watch: LampWatch, *, night: bool, open_keys: set[str] | frozenset[str]) -> list[AlarmChange]:
    """The alarm changes for one lamp now; updates `watch`. Raising an open key or clearing a
    closed one is never returned."""
    out: list[AlarmChange] = []
    fk, ok, bk = fault_key(r.device_id), out_key(r.device_id), battery_key(r.device_id)
    if r.fault:
        if fk not in open_keys:
            label = FAULT_LABELS.get(r.fault, r.fault)
            out.append(AlarmChange(fk, "raise", "light_fault", "critical", f"{r.name} 路灯故障：{label}"))
    elif fk in open_keys:
        out.append(AlarmChange(fk, "clear"))

    if r.battery_pct is not None:
        if r.battery_pct < BATTERY_LOW_PCT and bk not in open_keys:
            out.append(AlarmChange(bk, "raise", "light_battery_low", "warning",
                                   f"{r.name} 路灯电池电量低：{r.battery_pct:.0f}%"))
        elif r.battery_pct >= BATTERY_OK_PCT and bk in open_keys:
            out.append(AlarmChange(bk, "clear"))

    new = r.heartbeats > watch.heartbeats_seen
    watch.heartbeats_seen = max(watch.heartbeats_seen, r.heartbeats)
    dark = r.on is False or r.level == 0
    if not night or r.mode != "auto" or not dark:
        watch.dark_streak = 0
        if ok in open_keys:
            out.append(AlarmChange(ok, "clear"))
        return out
    if new:
        watch.dark_streak += 1
    if watch.dark_streak >= OUT_AT_NIGHT_HEARTBEATS and ok not in open_keys:
        out.append(AlarmChange(ok, "raise", "light_out_at_night", "warning", f"{r.name} 路灯夜间未亮"))
    return out
