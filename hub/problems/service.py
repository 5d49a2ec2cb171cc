"""ProblemService: the ledger's facade over its store.

Creates problems (from an alert key, a camera — whose latest stored snapshot becomes the
"before" photo — or plain input), moves them through the state machine and deletes them,
publishing `problem` events and auditing every write with the caller's principal. Photos
are the `PhotoDesk`'s (hub.problems.photos); overdue alerts and the `problems` counts the
`OverdueWatch`'s (hub.problems.overdue).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from hub.auth import Principal
from hub.clock import Clock
from hub.ports import AlertBook as AlertPort
from hub.ports import EventSink as EventPort
from hub.ports import PointSink
from hub.problems.errors import Conflict, Invalid, NotFound, Unavailable, check_ts
from hub.problems.machine import TransitionForbidden, check_transition
from hub.problems.model import CATEGORIES, DeviceInfo, Filters, Photo, Places, Problem
from hub.problems.overdue import OverdueWatch
from hub.problems.photos import FRESH_WAIT_S, PendingPhoto, PhotoDesk, SnapshotSource
from hub.problems.store import ProblemStore, valid_problem_id

__all__ = ["Conflict", "DeviceInfo", "Invalid", "NewProblem", "NotFound", "PendingPhoto", "Places",
           "ProblemService", "Unavailable"]


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


class ProblemService:
    def __init__(
        self, *, store: ProblemStore, clock: Clock, zone: ZoneInfo, places: Places, alerts: AlertPort,
        events: EventPort, emit_points: PointSink, audit: Callable[[Principal, str, str | None, str], None],
        snapshots: SnapshotSource | None = None, max_pixels: int = 40_000_000, fresh_wait_s: float = FRESH_WAIT_S,
    ) -> None:
        self.store, self.clock, self.zone, self.places = store, clock, zone, places
        self.alerts, self.events, self.audit = alerts, events, audit
        self.photos = PhotoDesk(store=store, clock=clock, get=self.get, device=places.device, events=events,
                                audit=audit, snapshots=snapshots, max_pixels=max_pixels, fresh_wait_s=fresh_wait_s)
        self.overdue = OverdueWatch(store=store, alerts=alerts, zone=zone, village_name=places.village_name,
                                    emit_points=emit_points)

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Pick up the overdue alerts still open from before a restart."""
        self.overdue.start()

    def stop(self) -> None:
        self.photos.stop()
        self.store.close()

    def sweep(self, now: float) -> None:
        """Raise/clear overdue alerts; write the counts each minute and after a change;
        forget fresh-snapshot requests nobody answered. Call it periodically (runtime sweep)."""
        self.photos.forget_stale(now)
        self.overdue.sweep(now)

    def write_counts(self, now: float) -> int:
        return self.overdue.write_counts(now)

    # --- reads --------------------------------------------------------------------------

    def get(self, pid: str) -> Problem:
        p = self.store.get(pid) if valid_problem_id(pid) else None
        if p is None:
            raise NotFound(f"unknown problem {pid[:32]!r}")
        return p

    def query(self, filters: Filters, limit: int = 100, offset: int = 0) -> tuple[list[Problem], int]:
        return self.store.query(filters, self.clock.now(), limit, offset)

    def photo_path(self, pid: str, photo_id: str) -> Path:
        path = self.store.photo_path(pid, photo_id)
        if path is None:
            raise NotFound(f"unknown photo {photo_id[:32]!r} of problem {pid[:32]!r}")
        return path

    def day_of(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, self.zone).strftime("%Y%m%d")

    def local_time(self, ts: float | None) -> str:
        return self.overdue.local_time(ts)

    # --- create, transitions, delete ----------------------------------------------------

    def create(self, spec: NewProblem, by: Principal, *, created_at: float | None = None) -> Problem:
        """`created_at` is for the demo's history only; the API creates problems now."""
        now = self.clock.now() if created_at is None else created_at
        village, group, device_id = spec.village, spec.group, spec.device_id
        if spec.category not in CATEGORIES:
            raise Invalid("category", f"one of {', '.join(CATEGORIES)}")
        if not spec.title.strip():
            raise Invalid("title", "must not be empty")
        check_ts(spec.deadline, "deadline")
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
            before = self.photos.camera_latest(spec.before_from_camera, "before_from_camera")
        problem = Problem(
            id="", village=village, group=group, category=spec.category, title=spec.title.strip(),
            description=spec.description, device_id=device_id, alert_key=spec.alert_key,
            owner=spec.owner or None, deadline=spec.deadline, state="open", created_at=now, created_by=by.name,
            updated_at=now, closed_at=None,
        )
        problem = self.store.insert(problem, self.day_of(now), note="创建")
        if before is not None and spec.before_from_camera:
            self.photos.add(problem.id, "before", "camera", spec.before_from_camera, before[0], before[1], by, now)
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

    def transition(self, pid: str, to_state: str, by: Principal, *, owner: str | None = None,
                   deadline: float | None = None, note: str = "", at: float | None = None) -> Problem:
        """`at` is for the demo's history only."""
        check_ts(deadline, "deadline")
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
        self.overdue.refresh(problem, self.clock.now())
        self._changed(problem, "transition")
        return problem

    def delete(self, pid: str, by: Principal) -> None:
        problem = self.get(pid)
        self.store.delete(pid)
        self.audit(by, "problem.delete", pid, f"state={problem.state} title={problem.title[:80]}")
        now = self.clock.now()
        self.overdue.forget(pid, now)
        self.events.publish("problem", {**problem.summary(now), "deleted": True, "action": "deleted"}, now)

    def _changed(self, problem: Problem, action: str) -> None:
        self.overdue.dirty = True
        now = self.clock.now()
        self.events.publish("problem", {**problem.summary(now), "action": action}, now)

    # --- photos (hub.problems.photos) ---------------------------------------------------

    def add_upload(self, pid: str, stage: str, data: bytes, by: Principal) -> Photo:
        return self.photos.add_upload(pid, stage, data, by)

    def add_from_camera(self, pid: str, stage: str, camera: str, by: Principal) -> Photo:
        """The camera's latest stored snapshot, copied."""
        return self.photos.add_from_camera(pid, stage, camera, by)

    def request_fresh(self, pid: str, stage: str, camera: str, by: Principal,
                      wait_s: float | None = None) -> Photo | PendingPhoto:
        """A new snapshot from the camera: the photo when it came within `wait_s`, else a
        PendingPhoto (attached when it comes)."""
        return self.photos.request_fresh(pid, stage, camera, by, wait_s)

    def pending_photos(self) -> list[PendingPhoto]:
        return self.photos.pending()

