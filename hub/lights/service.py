"""LightService: commands to street lights with per-lamp delivery tracking, alarms, sun times.

Commands go out through the hub's publisher with the PROTOCOL §6 envelope; acks whose id
starts with `lt-` are routed here by the ingest pipeline. Every delivery change is saved
(SQLite), published on the event bus (`light_command`) and written to the time-series store
(measurement `light_command`). Alarms are evaluated periodically from the live state
(`sweep`, called by the hub's presence sweep), never on the ingest hot path. The sweep also
sends the lamps on a sun-mode schedule the new day's switch times once a day (hub.lights.sunplan).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any, Final, Protocol
from zoneinfo import ZoneInfo

from hub.broadcasts.acks import parse_ack
from hub.lights import alarms as rules
from hub.lights.commands import (
    ACK_GRACE_S,
    ACK_TO_STATE,
    COMMAND_PREFIX,
    COMMAND_TTL_S,
    FINAL,
    envelope,
    may_move,
    new_batch_id,
    new_command_id,
)
from hub.lights.schedule import Schedule, SunSchedule, next_transitions
from hub.lights.store import Batch, Delivery, LightStore
from hub.lights.sun import NoSunEvent, SunTimes, is_night, sun_times
from hub.lights.sunplan import SYSTEM_BY, SunPlan, due_for_resend
from hub.messages import Point, Rejection
from hub.ports import AlertBook, Clock, EventSink, PointSink, PublishFn
from hub.rejections import REJECTIONS
from hub.targets import Targets
from hub.topics import DEFAULT_ROOT

log = logging.getLogger(__name__)

DEFAULT_CENTRE: Final = (31.02, 114.40)  # the sample township (hub.registry.sample.CENTRE)
ALARM_EVERY_S: Final = 2.0  # alarm evaluation period (the sweep runs every second)
_COMMAND_KEY: Final = COMMAND_PREFIX.encode()


class NoTargets(ValueError):
    """No registered street light matches the command's targets."""


class _Registry(Protocol):
    @property
    def version(self) -> int: ...

    def devices(self, kind: str | None = None, village: str | None = None,
                group: str | None = None) -> list[Any]: ...

    def get(self, device_id: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class LightConfig:
    topic_root: str = DEFAULT_ROOT
    tz: str = "Asia/Shanghai"
    lat: float | None = None  # VH_TOWNSHIP_LAT; None: the centre of the registered devices
    lon: float | None = None
    ttl_s: float = COMMAND_TTL_S


class LightService:
    def __init__(self, *, store_path: Path, clock: Clock, registry: _Registry, live: Any,
                 publish: PublishFn, emit_points: PointSink, alerts: AlertBook, events: EventSink,
                 config: LightConfig) -> None:
        self.clock = clock
        self.registry = registry
        self.live = live
        self._publish = publish
        self._emit = emit_points
        self.alerts = alerts
        self.events = events
        self.config = config
        self.zone = ZoneInfo(config.tz)
        self._store_path = store_path
        self.store: LightStore | None = None
        self._lock = threading.RLock()
        self._open: dict[str, Delivery] = {}  # command id → not yet final
        self._watch: dict[str, rules.LampWatch] = {}
        self._plans: dict[str, SunPlan] = {}  # device → its sun-mode schedule (hub.lights.sunplan)
        self._open_alarms: set[str] = set()
        self._centre: tuple[int, tuple[float, float]] | None = None
        self._last_alarm_run = -1e18

    # --- life cycle ------------------------------------------------------------------
    def start(self) -> None:
        self.store = LightStore(self._store_path)
        self._open = {d.command_id: d for d in self.store.open_deliveries()}
        self._plans = {p.device: p for p in self.store.sun_plans()}
        self._open_alarms = {a.key for a in self.alerts.open_alerts() if a.key.startswith("light:")}

    def stop(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def _db(self) -> LightStore:
        if self.store is None:
            raise RuntimeError("LightService not started")
        return self.store

    # --- where the township is ----------------------------------------------------------
    def position(self) -> tuple[float, float]:
        """VH_TOWNSHIP_LAT/LON; else the centre of the registered devices; else the sample's."""
        if self.config.lat is not None and self.config.lon is not None:
            return self.config.lat, self.config.lon
        cached = self._centre
        if cached is not None and cached[0] == self.registry.version:
            return cached[1]
        pts = [(d.lat, d.lon) for d in self.registry.devices() if d.lat is not None and d.lon is not None]
        centre = ((sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)) if pts
                  else DEFAULT_CENTRE)
        self._centre = (self.registry.version, centre)
        return centre

    def sun(self, day: date) -> SunTimes:
        lat, lon = self.position()
        return sun_times(lat, lon, day, self.zone)

    # --- reads ---------------------------------------------------------------------------
    def lights(self) -> list[dict[str, Any]]:
        """Every street light with presence and its latest heartbeat values."""
        out = []
        for d in self.registry.devices(kind="light"):
            live, status, _ = self.live.get(d.id)
            v = live.values if live is not None else {}
            out.append({
                "id": d.id, "name": d.name, "village": d.village, "group": d.group, "lat": d.lat, "lon": d.lon,
                "status": status, "on": v.get("on"), "level": v.get("level"), "battery_pct": v.get("battery_pct"),
                "solar": v.get("solar"), "fault": v.get("fault") or None, "power_w": v.get("power_w"),
                "last_seen": live.last_seen if live is not None else None,
            })
        return out

    def sun_plans(self) -> list[SunPlan]:
        """The lamps on a sun-mode schedule, with the command that last sent it."""
        with self._lock:
            return sorted(self._plans.values(), key=lambda p: p.device)

    def batch(self, batch_id: str) -> tuple[Batch, list[Delivery]] | None:
        return self._db().batch(batch_id)

    # --- commands --------------------------------------------------------------------------
    def resolve(self, targets: Targets) -> list[Any]:
        lamps = self.registry.devices(kind="light")
        return lamps if targets.all else [d for d in lamps if targets.matches(d)]

    def command(self, targets: Targets, action: str, *, by: str, level: int | None = None,
                schedule: Schedule | None = None) -> tuple[Batch, list[Delivery]]:
        lamps = self.resolve(targets)
        if not lamps:
            raise NoTargets("no street light matches the targets")
        return self._issue(lamps, targets, action, by=by, level=level, schedule=schedule, now=self.clock.now())

    def _issue(self, lamps: list[Any], targets: Targets, action: str, *, by: str, level: int | None,
               schedule: Schedule | None, now: float) -> tuple[Batch, list[Delivery]]:
        wire_schedule = next_on = next_off = None
        if schedule is not None:
            lat, lon = self.position()
            next_on, next_off = next_transitions(schedule, now, lat, lon, self.zone)
            wire_schedule = schedule.wire()
        body: dict[str, Any] = {"targets": targets.wire()}
        if level is not None:
            body["level"] = level
        if wire_schedule is not None:
            body["schedule"] = wire_schedule
            body["next_on"], body["next_off"] = next_on, next_off
        batch = Batch(new_batch_id(), action, body, now, by)
        deliveries = []
        for lamp in lamps:
            cid = new_command_id()
            payload = envelope(cid, action, now, level=level, schedule=wire_schedule, next_on=next_on,
                               next_off=next_off, tz=self.config.tz if wire_schedule else None,
                               ttl_s=self.config.ttl_s)
            deliveries.append(Delivery(cid, batch.id, lamp.id, "pending", "", now, now + self.config.ttl_s,
                                       json.dumps(payload, ensure_ascii=False, separators=(",", ":"))))
        with self._lock:
            self._db().add_batch(batch, deliveries)
            if schedule is not None and next_off is not None:
                self._keep_plans(schedule, deliveries, next_off, now)
            for d in deliveries:
                self._open[d.command_id] = d
            for d in deliveries:
                self._send(d, now, batch.action)
        return batch, deliveries

    def _keep_plans(self, schedule: Schedule, deliveries: list[Delivery], next_off: float, now: float) -> None:
        """A sun schedule is kept per lamp for the daily resend; a fixed one replaces it."""
        if isinstance(schedule, SunSchedule):
            plans = [SunPlan(d.device, schedule, d.command_id, next_off, now) for d in deliveries]
            self._db().save_sun_plans(plans, [])
            self._plans.update((p.device, p) for p in plans)
        else:
            dropped = [d.device for d in deliveries if d.device in self._plans]
            if dropped:
                self._db().save_sun_plans([], dropped)
                for dev in dropped:
                    del self._plans[dev]

    def _send(self, d: Delivery, now: float, action: str | None = None) -> None:
        if self.live.status(d.device) != "online":
            self._move(d, "offline", now, "not connected")
            return
        try:
            self._publish(f"{self.config.topic_root}/dev/{d.device}/cmd", d.payload.encode())
        except Exception as exc:  # the MQTT client is reconnecting: retried by the sweep
            log.warning("light command %s to %s not sent: %s", d.command_id, d.device, exc)
            self._move(d, "offline", now, "broker unreachable")
            return
        self._move(d, "sent", now)

    def _move(self, d: Delivery, state: str, ts: float, reason: str = "") -> bool:
        if not may_move(d.state, state) and not (d.state == "offline" and state == "offline"):
            return False
        if d.state == state and d.reason == reason:
            return False
        d.state, d.reason, d.updated_at = state, reason, ts
        self._db().update(d)
        plan = self._plans.get(d.device)
        if plan is not None and plan.command_id == d.command_id:
            self._plans[d.device] = replace(plan, state=state)
        if state in FINAL:
            self._open.pop(d.command_id, None)
        dev = self.registry.get(d.device)
        action = json.loads(d.payload).get("action", "")
        tags = {"device": d.device, "village": (dev.village or "") if dev else "",
                "village_group": (dev.group or "") if dev else "", "action": action}
        self._emit([Point("light_command", tags, {"batch_id": d.batch_id, "command_id": d.command_id,
                                                   "state": state}, ts)])
        self.events.publish("light_command", {"id": d.batch_id, "device": d.device, "state": state,
                                              "command_id": d.command_id, "reason": reason or None}, ts)
        return True

    # --- acks (routed from the ingest pipeline) ----------------------------------------------
    def on_ack(self, device_id: str, payload: bytes, received_at: float) -> bool | None:
        """None: not a light command's ack (the caller passes it on). True: accepted.
        False: rejected and counted here."""
        if _COMMAND_KEY not in payload:
            return None
        parsed = parse_ack(payload, device_id)
        if isinstance(parsed, Rejection) or not parsed.command_id.startswith(COMMAND_PREFIX):
            return None
        with self._lock:
            d = self._open.get(parsed.command_id) or self._db().delivery(parsed.command_id)
            if d is None:
                return None
            if d.device != device_id:
                REJECTIONS.reject(Rejection("ack", "wrong_device", device_id, parsed.command_id))
                return False
            state = ACK_TO_STATE.get(parsed.state)
            if state is not None:
                self._move(d, state, received_at, parsed.reason)
            return True

    # --- periodic: offline lamps back, expiry, alarms --------------------------------------------
    def sweep(self, now: float) -> None:
        with self._lock:
            for d in list(self._open.values()):
                if d.state == "offline" and now < d.expires_at and self.live.status(d.device) == "online":
                    self._send(d, now)
                elif d.state in ("pending", "sent", "received") and now > d.expires_at + ACK_GRACE_S:
                    self._move(d, "expired", now, "no answer")
                elif d.state == "offline" and now >= d.expires_at:
                    self._open.pop(d.command_id, None)  # stays `offline`: never reached the lamp
            self.resend_sun_schedules(now)
        at = self.clock.now()  # the service's own clock judges night (tests inject one)
        if at - self._last_alarm_run >= ALARM_EVERY_S:
            self._last_alarm_run = at
            self.evaluate_alarms(at)

    def resend_sun_schedules(self, now: float) -> list[Batch]:
        """Send the lamps due it (hub.lights.sunplan) their sun schedule with the new day's times."""
        with self._lock:
            due = due_for_resend(self._plans.values(), now, online=lambda dev: self.live.status(dev) == "online",
                                 in_flight=lambda cid: cid in self._open)
            batches = []
            for schedule, devices in due.items():
                lamps = [d for d in (self.registry.get(dev) for dev in devices) if d is not None and d.kind == "light"]
                if not lamps:
                    continue
                try:
                    batch, _ = self._issue(lamps, Targets(devices=tuple(d.id for d in lamps)), "set_schedule",
                                           by=SYSTEM_BY, level=None, schedule=schedule, now=now)
                except NoSunEvent as exc:  # polar day or night: tried again after RETRY_S
                    log.warning("sun schedule not resent to %s: %s", devices, exc)
                    for dev in devices:
                        self._plans[dev] = replace(self._plans[dev], state="unsent", sent_at=now)
                    continue
                batches.append(batch)
            return batches

    def evaluate_alarms(self, now: float) -> None:
        lat, lon = self.position()
        night = is_night(now, lat, lon, self.zone)
        for d in self.registry.devices(kind="light"):
            live, status, _ = self.live.get(d.id)
            if live is None or status != "online":
                continue
            v = live.values
            reading = rules.LampReading(d.id, d.name or d.id, live.heartbeats, on=v.get("on"),
                                        level=v.get("level"), mode=v.get("mode"), fault=v.get("fault") or None,
                                        battery_pct=v.get("battery_pct"))
            watch = self._watch.setdefault(d.id, rules.LampWatch())
            self._apply(rules.evaluate(reading, watch, night=night, open_keys=self._open_alarms), d.id, now)

    def _apply(self, changes: Iterable[rules.AlarmChange], device_id: str, now: float) -> None:
        for c in changes:
            if c.action == "raise":
                self.alerts.raise_alert(c.key, device_id=device_id, type=c.type, severity=c.severity,
                                        message=c.message, ts=now)
                self._open_alarms.add(c.key)
            else:
                self.alerts.clear_alert(c.key, now)
                self._open_alarms.discard(c.key)
