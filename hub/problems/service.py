"""ProblemService: the ledger's behaviour over its store.

Creates problems (from an alert key, a camera — whose latest stored snapshot becomes the
"before" photo — or plain input), moves them through the state machine, attaches photos
(uploads, a camera's latest snapshot, or a fresh snapshot requested from the camera and
attached when it arrives), raises and clears `problem:{id}:overdue` alerts in the periodic
sweep, writes the `problems` counts to the time-series store, publishes `problem` events
and audits every write with the caller's principal.
"""

from __future__ import annotations

import logging
import math
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from hub.auth import Principal
from hub.clock import Clock
from hub.messages import Point
from hub.ports import AlertBook as AlertPort
from hub.ports import EventSink as EventPort
from hub.problems.machine import TransitionForbidden, check_transition
from hub.problems.model import (
    CATEGORIES,
    MAX_PHOTO_BYTES,
    STAGES,
    Filters,
    Photo,
    Problem,
)
from hub.problems.store import ProblemStore, valid_problem_id
from hub.snapshots.jpeg import JpegRejected, inspect_jpeg

log = logging.getLogger(__name__)

COUNTS_EVERY_S = 60.0
FRESH_WAIT_S = 15.0
PENDING_TTL_S = 600.0  # a fresh-snapshot request nobody answered is forgotten after this
MIN_TS, MAX_TS = 946_684_800.0, 7_258_118_400.0  # 2000-01-01 … 2200-01-01
FINAL_STATES = frozenset({"closed", "rejected"})


class NotFound(Exception):
    """No such problem / photo (404)."""


class Invalid(ValueError):
    """Bad input naming its field (422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


class Conflict(Exception):
    """The request does not fit the problem's state (409)."""


class Unavailable(Exception):
    """A collaborator is not there now, e.g. the MQTT client (503)."""


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    kind: str
    village: str | None
    group: str | None


@dataclass(frozen=True, slots=True)
class Places:
    """What the ledger needs from the registry."""

    device: Callable[[str], DeviceInfo | None]
    village_name: Callable[[str], str | None]  # None: no such village
    group_village: Callable[[str], str | None]  # the village of a group; None: no such group


@dataclass(frozen=True, slots=True)
class NewProblem:
    village: str | None
    category: str
    title: str
    group: str | None = None
    description: str = ""
    device_id: str | None = None
    alert_key: str | None = None
    owner: str | None = None
    deadline: float | None = None
    before_from_camera: str | None = None


@dataclass(frozen=True, slots=True)
class PendingPhoto:
    command_id: str
    problem_id: str
    stage: str
    device_id: str
    requested_at: float

    def to_json(self) -> dict[str, Any]:
        return {"pending": True, "command_id": self.command_id, "problem_id": self.problem_id,
                "stage": self.stage, "device_id": self.device_id, "requested_at": self.requested_at}


@dataclass
class _Waiting:
    pending: PendingPhoto
    by: Principal
    event: threading.Event
    photo: Photo | None = None


def check_jpeg(data: bytes, max_pixels: int, field: str = "file") -> None:
    checked = inspect_jpeg(data, max_bytes=MAX_PHOTO_BYTES, max_pixels=max_pixels)
    if isinstance(checked, JpegRejected):
        raise Invalid(field, f"not an acceptable JPEG ({checked.reason.value}: {checked.detail})")


def _check_ts(value: float | None, field: str) -> None:
    if value is not None and not (math.isfinite(value) and MIN_TS <= value <= MAX_TS):
        raise Invalid(field, "must be a Unix time in seconds between 2000 and 2200")


class ProblemService:
    def __init__(
        self, *, store: ProblemStore, clock: Clock, zone: ZoneInfo, places: Places, alerts: AlertPort,
        events: EventPort, emit_points: Callable[[list[Point]], None],
        audit: Callable[[Principal, str, str | None, str], None], snapshots: Any = None,
        max_pixels: int = 40_000_000, fresh_wait_s: float = FRESH_WAIT_S,
    ) -> None:
        self.store, self.clock, self.zone, self.places = store, clock, zone, places
        self.alerts, self.events, self.emit_points, self.audit = alerts, events, emit_points, audit
        self.snapshots = snapshots
        self.max_pixels = max_pixels
        self.fresh_wait_s = fresh_wait_s
        self._lock = threading.Lock()
        self._overdue: set[str] = set()
        self._waiting: dict[str, _Waiting] = {}
        self._series: set[tuple[str, str]] = set()
        self._counts_at: float | None = None
        self._dirty = True
        if snapshots is not None and hasattr(snapshots, "add_answer_listener"):
            snapshots.add_answer_listener(self._on_snapshot_answer)

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Pick up the overdue alerts still open from before a restart."""
        with self._lock:
            for a in self.alerts.open_alerts():
                key = getattr(a, "key", "")
                if key.startswith("problem:") and key.endswith(":overdue"):
                    self._overdue.add(key.split(":")[1])

    def stop(self) -> None:
        with self._lock:
            for w in self._waiting.values():
                w.event.set()
            self._waiting.clear()
        self.store.close()

    # --- reads --------------------------------------------------------------------------

    def get(self, pid: str) -> Problem:
        p = self.store.get(pid) if valid_problem_id(pid) else None
        if p is None:
            raise NotFound(f"unknown problem {pid[:32]!r}")
        return p

    def query(self, filters: Filters, limit: int = 100, offset: int = 0) -> tuple[list[Problem], int]:
        return self.store.query(filters, self.clock.now(), limit, offset)

    def photo_path(self, pid: str, photo_id: str) -> Any:
        path = self.store.photo_path(pid, photo_id)
        if path is None:
            raise NotFound(f"unknown photo {photo_id[:32]!r} of problem {pid[:32]!r}")
        return path

    def day_of(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, self.zone).strftime("%Y%m%d")

    def local_time(self, ts: float | None) -> str:
        return "" if ts is None else datetime.fromtimestamp(ts, self.zone).strftime("%Y-%m-%d %H:%M")

    # --- create -------------------------------------------------------------------------

    def create(self, spec: NewProblem, by: Principal, *, created_at: float | None = None) -> Problem:
        """`created_at` is for the demo's history only; the API creates problems now."""
        now = self.clock.now() if created_at is None else created_at
        village, group, device_id = spec.village, spec.group, spec.device_id
        if spec.category not in CATEGORIES:
            raise Invalid("category", f"one of {', '.join(CATEGORIES)}")
        if not spec.title.strip():
            raise Invalid("title", "must not be empty")
        _check_ts(spec.deadline, "deadline")
        if spec.alert_key and device_id is None:
            device_id = self._device_of_alert(spec.alert_key)
        if device_id is None and spec.before_from_camera:
            device_id = spec.before_from_camera
        if device_id is not None:
            dev = self.places.device(device_id)
            if dev is None:
                field = "device_id" if spec.device_id else "before_from_camera"
                raise Invalid(field, f"unknown device {device_id!r}")
            if village is None:
                village, group = dev.village, group or dev.group
        if not village:
            raise Invalid("village", "required (or a registered device_id to take it from)")
        if self.places.village_name(village) is None:
            raise Invalid("village", f"unknown village {village!r}")
        if group is not None and self.places.group_village(group) != village:
            raise Invalid("group", f"{group!r} is not a group of village {village!r}")
        before: tuple[bytes, float] | None = None
        if spec.before_from_camera:
            before = self._camera_latest(spec.before_from_camera, "before_from_camera")
        problem = Problem(
            id="", village=village, group=group, category=spec.category, title=spec.title.strip(),
            description=spec.description, device_id=device_id, alert_key=spec.alert_key,
            owner=spec.owner or None, deadline=spec.deadline, state="open", created_at=now, created_by=by.name,
            updated_at=now, closed_at=None,
        )
        problem = self.store.insert(problem, self.day_of(now), note="创建")
        if before is not None and spec.before_from_camera:
            self._add_photo(problem.id, "before", "camera", spec.before_from_camera, before[0], before[1], by, now)
            problem = self.get(problem.id)
        self.audit(by, "problem.create", problem.id,
                   f"village={village} category={spec.category} title={problem.title[:80]}"
                   + (f" alert={spec.alert_key}" if spec.alert_key else "")
                   + (f" before_from_camera={spec.before_from_camera}" if spec.before_from_camera else ""))
        self._changed(problem, "created")
        return problem

    def _device_of_alert(self, key: str) -> str | None:
        for a in self.alerts.open_alerts():
            if getattr(a, "key", None) == key:
                return getattr(a, "device_id", None)
        recent = getattr(self.alerts, "recent", None)
        if recent is not None:
            for a in recent(500):
                if a.key == key:
                    return a.device_id  # type: ignore[no-any-return]
        return None

    def _camera_latest(self, camera: str, field: str) -> tuple[bytes, float]:
        dev = self.places.device(camera)
        if dev is None or dev.kind != "camera":
            raise Invalid(field, f"{camera!r} is not a registered camera")
        if self.snapshots is None:
            raise Unavailable("this hub has no snapshot service")
        data = self.snapshots.storage.latest(camera)
        if data is None:
            raise Invalid(field, f"camera {camera!r} has no stored snapshot yet")
        check_jpeg(data, self.max_pixels, field)
        meta = self.snapshots.storage.latest_meta(camera) or {}
        taken = meta.get("ts")
        return data, float(taken) if isinstance(taken, int | float) else self.clock.now()

    # --- transitions --------------------------------------------------------------------

    def transition(self, pid: str, to_state: str, by: Principal, *, owner: str | None = None,
                   deadline: float | None = None, note: str = "", at: float | None = None) -> Problem:
        """`at` is for the demo's history only."""
        _check_ts(deadline, "deadline")
        now = self.clock.now() if at is None else at
        current = self.get(pid)
        check_transition(current.state, to_state, by.role)
        if to_state == "assigned" and not (owner or current.owner):
            raise Invalid("owner", "assigning a problem needs an owner (责任人)")
        if not self.store.transition(pid, expected_state=current.state, to_state=to_state, ts=now, by=by.name,
                                     note=note, owner=owner or None, deadline=deadline):
            latest = self.get(pid)  # moved meanwhile by someone else
            raise TransitionForbidden(latest.state, to_state)
        problem = self.get(pid)
        self.audit(by, "problem.transition", pid, f"{current.state}->{to_state}"
                   + (f" owner={owner}" if owner else "") + (f" deadline={deadline:.0f}" if deadline else "")
                   + (f" note={note[:200]}" if note else ""))
        self._refresh_overdue(problem, self.clock.now())
        self._changed(problem, "transition")
        return problem

    def delete(self, pid: str, by: Principal) -> None:
        problem = self.get(pid)
        self.store.delete(pid)
        self.audit(by, "problem.delete", pid, f"state={problem.state} title={problem.title[:80]}")
        now = self.clock.now()
        with self._lock:
            was = pid in self._overdue
            self._overdue.discard(pid)
        if was:
            self.alerts.clear_alert(f"problem:{pid}:overdue", now)
        self._dirty = True
        self.events.publish("problem", {**problem.summary(now), "deleted": True, "action": "deleted"}, now)

    # --- photos -------------------------------------------------------------------------

    def _photo_target(self, pid: str, stage: str) -> Problem:
        if stage not in STAGES:
            raise Invalid("stage", f"one of {', '.join(STAGES)}")
        problem = self.get(pid)
        if problem.state in FINAL_STATES:
            raise Conflict(f"problem {pid} is {problem.state}: no more photos")
        return problem

    def add_upload(self, pid: str, stage: str, data: bytes, by: Principal) -> Photo:
        self._photo_target(pid, stage)
        if len(data) > MAX_PHOTO_BYTES:
            raise Invalid("file", f"{len(data)} bytes > {MAX_PHOTO_BYTES}")
        check_jpeg(data, self.max_pixels)
        now = self.clock.now()
        return self._add_photo(pid, stage, "upload", None, data, now, by, now, publish=True)

    def add_from_camera(self, pid: str, stage: str, camera: str, by: Principal) -> Photo:
        """The camera's latest stored snapshot, copied."""
        self._photo_target(pid, stage)
        data, taken = self._camera_latest(camera, "from_camera")
        return self._add_photo(pid, stage, "camera", camera, data, taken, by, self.clock.now(), publish=True)

    def request_fresh(self, pid: str, stage: str, camera: str, by: Principal,
                      wait_s: float | None = None) -> Photo | PendingPhoto:
        """Ask the camera for a new snapshot and attach it when it arrives: the photo when it
        came within `wait_s`, else a PendingPhoto (it is attached when it comes)."""
        self._photo_target(pid, stage)
        dev = self.places.device(camera)
        if dev is None or dev.kind != "camera":
            raise Invalid("from_camera", f"{camera!r} is not a registered camera")
        if self.snapshots is None:
            raise Unavailable("this hub has no snapshot service")
        now = self.clock.now()
        cmd_id = uuid.uuid4().hex
        waiting = _Waiting(PendingPhoto(cmd_id, pid, stage, camera, now), by, threading.Event())
        with self._lock:
            self._waiting[cmd_id] = waiting
        try:
            self.snapshots.request_snapshot(camera, wait_s=0.0, command_id=cmd_id)
        except RuntimeError as exc:  # the MQTT client is not connected
            with self._lock:
                self._waiting.pop(cmd_id, None)
            raise Unavailable(str(exc)) from None
        self.audit(by, "problem.photo.request", pid, f"stage={stage} camera={camera} command={cmd_id}")
        waiting.event.wait(self.fresh_wait_s if wait_s is None else wait_s)
        return waiting.photo if waiting.photo is not None else waiting.pending

    def _on_snapshot_answer(self, device_id: str, command_ids: frozenset[str], jpeg: bytes, ts: float) -> None:
        """Called by the snapshot service (its worker thread) for a stored snapshot that
        answers commands; attaches the fresh photos this service asked for."""
        with self._lock:
            mine = [self._waiting.pop(c) for c in command_ids if c in self._waiting]
        for w in mine:
            if w.pending.device_id != device_id:
                continue
            try:
                w.photo = self._add_photo(w.pending.problem_id, w.pending.stage, "camera", device_id, jpeg, ts,
                                          w.by, self.clock.now(), publish=True,
                                          detail=f" command={w.pending.command_id}")
            except NotFound:
                log.info("fresh snapshot for deleted problem %s dropped", w.pending.problem_id)
            except Exception:
                log.exception("fresh snapshot for problem %s could not be attached", w.pending.problem_id)
            finally:
                w.event.set()

    def pending_photos(self) -> list[PendingPhoto]:
        with self._lock:
            return [w.pending for w in self._waiting.values()]

    def _add_photo(self, pid: str, stage: str, source: str, device_id: str | None, data: bytes, taken_at: float,
                   by: Principal, now: float, *, publish: bool = False, detail: str = "") -> Photo:
        if self.store.get(pid) is None:
            raise NotFound(f"unknown problem {pid}")
        photo = self.store.add_photo(Photo(uuid.uuid4().hex[:16], pid, stage, source, device_id, taken_at, now,
                                           by.name, len(data)), data)
        self.audit(by, "problem.photo", pid, f"photo={photo.id} stage={stage} source={source}"
                   + (f" camera={device_id}" if device_id else "") + detail)
        if publish:
            problem = self.get(pid)
            self.events.publish("problem", {**problem.summary(self.clock.now()), "action": "photo",
                                            "photo": photo.to_json()}, now)
        return photo

    # --- sweep: overdue alerts, counts ---------------------------------------------------

    def sweep(self, now: float) -> None:
        """Raise/clear overdue alerts; write the counts each minute and after a change;
        forget fresh-snapshot requests nobody answered. Call it periodically (runtime sweep)."""
        rows = self.store.overdue_ids(now)
        current = {r[0] for r in rows}
        with self._lock:
            new = [r for r in rows if r[0] not in self._overdue]
            gone = self._overdue - current
            self._overdue = current
            stale = [c for c, w in self._waiting.items() if now - w.pending.requested_at > PENDING_TTL_S]
            for c in stale:
                self._waiting.pop(c).event.set()
        for pid, device_id, deadline, village, title, owner in new:
            self._raise_overdue(pid, device_id, deadline, village, title, owner, now)
        for pid in gone:
            self.alerts.clear_alert(f"problem:{pid}:overdue", now)
        if new or gone:
            self._dirty = True
        if self._dirty or self._counts_at is None or now - self._counts_at >= COUNTS_EVERY_S:
            self.write_counts(now)

    def _raise_overdue(self, pid: str, device_id: str | None, deadline: float, village: str, title: str,
                       owner: str | None, now: float) -> None:
        name = self.places.village_name(village) or village
        self.alerts.raise_alert(
            f"problem:{pid}:overdue", device_id=device_id, type="problem_overdue", severity="warning",
            message=f"整改事项超期：{name}「{title[:40]}」（{pid}）截止 {self.local_time(deadline)}，"
                    f"责任人 {owner or '未指定'}", ts=now,
        )

    def _refresh_overdue(self, problem: Problem, now: float) -> None:
        overdue = problem.is_overdue(now)
        with self._lock:
            was = problem.id in self._overdue
            if overdue:
                self._overdue.add(problem.id)
            else:
                self._overdue.discard(problem.id)
        if was and not overdue:
            self.alerts.clear_alert(f"problem:{problem.id}:overdue", now)
        elif overdue and not was:
            assert problem.deadline is not None
            self._raise_overdue(problem.id, problem.device_id, problem.deadline, problem.village, problem.title,
                                problem.owner, now)

    def write_counts(self, now: float) -> int:
        """One `problems` point per (village, category) ever seen; returns how many."""
        self._dirty = False
        self._counts_at = now
        counts = self.store.counts(now)
        for key in self._series - counts.keys():  # all deleted: the series goes to zero
            counts[key] = {"open": 0, "overdue": 0, "closed": 0}
        self._series = set(counts)
        points = [Point("problems", {"village": v, "category": c}, dict(n), now) for (v, c), n in counts.items()]
        if points:
            self.emit_points(points)
        return len(points)

    def _changed(self, problem: Problem, action: str) -> None:
        self._dirty = True
        now = self.clock.now()
        self.events.publish("problem", {**problem.summary(now), "action": action}, now)

