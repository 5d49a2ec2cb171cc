"""A simulated street light (智慧路灯) that behaves as its firmware would (docs/devices.md).

`LampFirmware` is pure: `handle(cmd, now)` returns the acks to send and `step(now, sun_elev)`
moves the physics on (lux, solar charging by day, the battery draining at night, energy).
`SimLight` wires it to MQTT: heartbeats with the light fields, acks, fault events.

Day and night come from the sun's elevation at the lamp (astral) on the simulator's scene
clock; command expiry and schedule times are on the device's own clock (wire time).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

from astral import Observer
from astral.sun import elevation

from device_sim.clock import SceneClock
from device_sim.device import SimDevice
from device_sim.payloads import Kind

SEEN_IDS_KEPT: Final = 4096
DAY_S: Final = 86_400.0
DUSK_LUX: Final = 10.0  # the photocell lights the lamp below this …
DAWN_LUX: Final = 30.0  # … and puts it out above this (hysteresis)
BATTERY_CUTOFF_PCT: Final = 5.0  # a solar lamp below this cannot light (its fault: `battery`)
STANDBY_W: Final = 0.3
DEFAULT_POSITION: Final = (31.02, 114.40)  # when the township file gives none


@dataclass(frozen=True, slots=True)
class Ack:
    cmd_id: str
    state: str
    reason: str | None = None


def _int_in(value: Any, lo: int, hi: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        return None
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def lux_at(sun_elev_deg: float) -> float:
    """Ambient light on the lamp's sensor for a sun elevation (clear sky, roughly)."""
    if sun_elev_deg >= 0:
        return 400.0 + 100_000.0 * math.sin(math.radians(sun_elev_deg))
    if sun_elev_deg > -12:
        return 400.0 * 10 ** (sun_elev_deg / 2)  # civil twilight: ~0.4 lx at -6°
    return 0.0


@dataclass
class LampFirmware:
    rated_w: float = 60.0
    solar: bool = False
    panel_w: float = 0.0
    battery_wh: float = 0.0
    battery_pct: float = 100.0
    level: int = 100  # the level it lights at
    lit: bool = False  # what the schedule / photocell / operator wants
    mode: str = "auto"  # auto: schedule or photocell; manual: an operator's command
    schedule: dict[str, Any] | None = None
    next_on: float | None = None
    next_off: float | None = None
    fault: str | None = None  # a lamp fault (led_open, driver, …) set by a fault scenario
    extra_drain_pct_h: float = 0.0  # fault `battery_dying`
    energy_wh: float = 0.0
    lux: float = 0.0
    solar_w: float = 0.0
    power_w: float = 0.0
    executed: int = 0  # commands acted on (redeliveries excluded)
    _last_step: float | None = None
    _dark: bool | None = None
    _seen: OrderedDict[str, str] = field(default_factory=OrderedDict)

    # -- what the lamp reports ----------------------------------------------------

    @property
    def battery_dead(self) -> bool:
        return self.solar and self.battery_pct < BATTERY_CUTOFF_PCT

    @property
    def reported_fault(self) -> str | None:
        if self.fault:
            return self.fault
        return "battery" if self.battery_dead else None

    @property
    def on(self) -> bool:
        """Actually lit: wanted, not dimmed to 0, no lamp fault, power to light it."""
        return self.lit and self.level > 0 and self.fault is None and not self.battery_dead

    # -- commands (PROTOCOL §6 envelope) --------------------------------------------

    def handle(self, cmd: dict[str, Any], now: float) -> list[Ack]:
        cmd_id = cmd.get("id")
        if not isinstance(cmd_id, str) or not cmd_id or len(cmd_id) > 64:
            return []
        if cmd_id in self._seen:  # redelivered: acked again, not executed again
            return [Ack(cmd_id, self._seen[cmd_id], "duplicate")]
        acks = self._execute(cmd_id, cmd, now)
        self.executed += 1
        if acks:
            self._remember(cmd_id, acks[-1].state)
        return acks

    def _remember(self, cmd_id: str, state: str) -> None:
        self._seen[cmd_id] = state
        self._seen.move_to_end(cmd_id)
        while len(self._seen) > SEEN_IDS_KEPT:
            self._seen.popitem(last=False)

    def _execute(self, cmd_id: str, cmd: dict[str, Any], now: float) -> list[Ack]:
        expires = _number(cmd.get("expires_at"))
        if expires is not None and now > expires:
            return [Ack(cmd_id, "expired")]
        action = cmd.get("action")
        if action == "on":
            level = cmd.get("level", self.level or 100)
            lv = _int_in(level, 1, 100)
            if lv is None:
                return [Ack(cmd_id, "rejected", "bad level")]
            return self._apply(cmd_id, lit=True, level=lv)
        if action == "off":
            return self._apply(cmd_id, lit=False, level=self.level)
        if action == "dim":
            lv = _int_in(cmd.get("level"), 0, 100)
            if lv is None:
                return [Ack(cmd_id, "rejected", "bad level")]
            return self._apply(cmd_id, lit=lv > 0, level=lv if lv > 0 else self.level)
        if action == "set_schedule":
            return self._set_schedule(cmd_id, cmd.get("schedule"), cmd, now)
        return [Ack(cmd_id, "rejected", f"unknown action {action!r}"[:80])]

    def _apply(self, cmd_id: str, *, lit: bool, level: int) -> list[Ack]:
        if lit and self.reported_fault is not None:
            return [Ack(cmd_id, "received"), Ack(cmd_id, "failed", self.reported_fault)]
        self.lit, self.level, self.mode = lit, level, "manual"
        return [Ack(cmd_id, "received"), Ack(cmd_id, "done")]

    def _set_schedule(self, cmd_id: str, sched: Any, cmd: dict[str, Any], now: float) -> list[Ack]:
        if not isinstance(sched, dict) or sched.get("mode") not in ("sun", "fixed"):
            return [Ack(cmd_id, "rejected", "bad schedule")]
        level = _int_in(sched.get("level", 100), 1, 100)
        on_t = _number(cmd.get("next_on", sched.get("next_on")))
        off_t = _number(cmd.get("next_off", sched.get("next_off")))
        if level is None or on_t is None or off_t is None:
            return [Ack(cmd_id, "rejected", "schedule needs level, next_on and next_off")]
        self.schedule, self.level, self.mode = dict(sched), level, "auto"
        self.next_on, self.next_off = on_t, off_t
        self.lit = off_t < on_t  # the next change puts it out: it is night now
        self._follow_schedule(now)
        return [Ack(cmd_id, "received"), Ack(cmd_id, "done")]

    # -- time passing -----------------------------------------------------------------

    def _follow_schedule(self, now: float) -> None:
        """Carry out every scheduled change up to `now`; each repeats a day later. A scheduled
        change ends a manual override (the firmware's rule)."""
        while self.next_on is not None and self.next_off is not None:
            t = min(self.next_on, self.next_off)
            if t > now:
                return
            if t == self.next_on:
                self.lit, self.next_on = True, self.next_on + DAY_S
            else:
                self.lit, self.next_off = False, self.next_off + DAY_S
            self.mode = "auto"

    def _photocell(self) -> None:
        """No schedule: the light sensor decides (with hysteresis); a manual command lasts
        until the next dusk or dawn."""
        dark = self._dark
        if self.lux < DUSK_LUX:
            dark = True
        elif self.lux > DAWN_LUX:
            dark = False
        changed, self._dark = dark != self._dark, dark
        if self.mode == "auto" or changed:
            self.lit, self.mode = bool(dark), "auto"

    def step(self, now: float, sun_elev_deg: float) -> None:
        """Move the lamp on to `now`: light sensor, schedule or photocell, power and battery."""
        dt_h = 0.0 if self._last_step is None else max(0.0, now - self._last_step) / 3600.0
        self._last_step = now
        # energy over the elapsed interval at the power drawn during it
        self.energy_wh += self.power_w * dt_h
        if self.solar:
            charge = self.solar_w * 0.85 * dt_h
            drain = self.power_w * dt_h
            delta_pct = (charge - drain) / max(1.0, self.battery_wh) * 100 - self.extra_drain_pct_h * dt_h
            self.battery_pct = min(100.0, max(0.0, self.battery_pct + delta_pct))
        self.lux = lux_at(sun_elev_deg)
        self.solar_w = self.panel_w * max(0.0, math.sin(math.radians(sun_elev_deg))) if self.solar else 0.0
        if self.schedule is not None:
            self._follow_schedule(now)
        else:
            self._photocell()
        self.power_w = self.rated_w * self.level / 100 if self.on else (STANDBY_W if self.fault is None else 0.0)

    def heartbeat_fields(self, temp_c: float) -> dict[str, Any]:
        out: dict[str, Any] = {
            "on": self.on, "level": self.level if self.on else 0, "power_w": round(self.power_w, 1),
            "energy_wh": round(self.energy_wh, 1), "mains": not self.solar, "solar": self.solar,
            "lux": round(self.lux, 1), "temp_c": round(temp_c, 1), "fault": self.reported_fault,
            "mode": self.mode,
        }
        if self.solar:
            out["battery_pct"] = round(self.battery_pct, 1)
            out["solar_w"] = round(self.solar_w, 1)
        return out


class SimLight(SimDevice):
    kind: ClassVar[Kind] = "light"

    def setup(self, scene_clock: SceneClock) -> SimLight:
        self.scene_clock = scene_clock
        lat = self.spec.lat if self.spec.lat is not None else DEFAULT_POSITION[0]
        lon = self.spec.lon if self.spec.lon is not None else DEFAULT_POSITION[1]
        self.observer = Observer(latitude=lat, longitude=lon)
        solar = self.spec.solar
        self.lamp = LampFirmware(
            rated_w=30.0 if solar else 60.0, solar=solar, panel_w=120.0 if solar else 0.0,
            battery_wh=720.0 if solar else 0.0, battery_pct=self.rng.uniform(55, 95) if solar else 100.0,
            level=100, energy_wh=self.rng.uniform(50_000, 400_000),
        )
        self.lamp.step(self.now(), self.sun_elevation())
        return self

    def sun_elevation(self) -> float:
        when = datetime.fromtimestamp(self.scene_clock.now(), UTC)
        return float(elevation(self.observer, when))

    def _step(self) -> None:
        before = self.lamp.reported_fault
        self.lamp.step(self.now(), self.sun_elevation())
        if self.lamp.reported_fault == "battery" and before != "battery":
            self.event("fault", {"component": "battery", "code": "battery",
                                 "battery_pct": round(self.lamp.battery_pct, 1)})

    def handle_command(self, cmd: dict[str, Any]) -> None:
        self._step()
        for a in self.lamp.handle(cmd, self.now()):
            self.ack(a.cmd_id, a.state, a.reason)
        self._step()

    def apply_fault(self, name: str, on: bool, params: dict[str, Any]) -> None:
        if name == "lamp_fault":
            self.lamp.fault = str(params.get("code", "led_open"))[:32] if on else None
            if on:
                self.event("fault", {"component": "lamp", "code": self.lamp.fault})
        elif name == "battery_dying" and self.lamp.solar:
            if on:
                self.lamp.battery_pct = min(self.lamp.battery_pct, float(params.get("pct", 15.0)))
                self.lamp.extra_drain_pct_h = float(params.get("drain_pct_h", 20.0))
            else:
                self.lamp.extra_drain_pct_h = 0.0
        self._step()

    def heartbeat_fields(self) -> dict[str, Any]:
        self._step()
        temp = 12.0 + (25.0 * self.lamp.level / 100 if self.lamp.on else 0.0) + self.rng.gauss(0, 0.4)
        return self.lamp.heartbeat_fields(temp)

