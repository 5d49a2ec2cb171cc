"""The ledger's photos: uploads, a camera's latest snapshot, and fresh snapshots requested
from a camera and attached when the answer comes (docs/problems.md#photos).

A fresh request sends the PROTOCOL §6 `snapshot` command with the ledger's own command id;
the snapshot service calls `on_snapshot_answer` (its worker thread) for a stored snapshot
answering it. The request waits up to `fresh_wait_s`; a later answer is still attached, and
requests nobody answered are forgotten after PENDING_TTL_S (`forget_stale`, from the sweep).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from hub.auth import Principal
from hub.clock import Clock
from hub.ports import EventSink
from hub.problems.errors import Conflict, Invalid, NotFound, Unavailable
from hub.problems.model import MAX_PHOTO_BYTES, STAGES, DeviceInfo, Photo, Problem
from hub.problems.store import ProblemStore
from hub.snapshots.jpegheader import JpegRejected, inspect_jpeg

log = logging.getLogger(__name__)

FRESH_WAIT_S: Final = 15.0
PENDING_TTL_S: Final = 600.0  # a fresh-snapshot request nobody answered is forgotten after this
FINAL_STATES: Final = frozenset({"closed", "rejected"})

Audit = Callable[[Principal, str, str | None, str], None]
AnswerListener = Callable[[str, frozenset[str], bytes, float], None]


class SnapshotSource(Protocol):
    """What the ledger uses of the snapshot service (hub.snapshots.service.SnapshotService)."""

    @property
    def storage(self) -> Any: ...  # latest(camera) -> bytes | None, latest_meta(camera) -> dict | None

    def request_snapshot(self, device_id: str, wait_s: float = 0.0, command_id: str | None = None) -> Any: ...

    def add_answer_listener(self, listener: AnswerListener) -> None: ...


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


class PhotoDesk:
    def __init__(self, *, store: ProblemStore, clock: Clock, get: Callable[[str], Problem],
                 device: Callable[[str], DeviceInfo | None], events: EventSink, audit: Audit,
                 snapshots: SnapshotSource | None, max_pixels: int, fresh_wait_s: float = FRESH_WAIT_S) -> None:
        self.store, self.clock, self.get, self.device = store, clock, get, device
        self.events, self.audit, self.snapshots = events, audit, snapshots
        self.max_pixels, self.fresh_wait_s = max_pixels, fresh_wait_s
        self._lock = threading.Lock()
        self._waiting: dict[str, _Waiting] = {}
        if snapshots is not None:
            snapshots.add_answer_listener(self.on_snapshot_answer)

    def stop(self) -> None:
        """Release every request still waiting."""
        with self._lock:
            for w in self._waiting.values():
                w.event.set()
            self._waiting.clear()

    def _target(self, pid: str, stage: str) -> Problem:
        if stage not in STAGES:
            raise Invalid("stage", f"one of {', '.join(STAGES)}")
        problem = self.get(pid)
        if problem.state in FINAL_STATES:
            raise Conflict(f"problem {pid} is {problem.state}: no more photos")
        return problem

    def _camera(self, camera: str, field: str) -> SnapshotSource:
        dev = self.device(camera)
        if dev is None or dev.kind != "camera":
            raise Invalid(field, f"{camera!r} is not a registered camera")
        if self.snapshots is None:
            raise Unavailable("this hub has no snapshot service")
        return self.snapshots

    def camera_latest(self, camera: str, field: str) -> tuple[bytes, float]:
        """The camera's latest stored snapshot and when it was taken."""
        snapshots = self._camera(camera, field)
        data = snapshots.storage.latest(camera)
        if data is None:
            raise Invalid(field, f"camera {camera!r} has no stored snapshot yet")
        check_jpeg(data, self.max_pixels, field)
        meta = snapshots.storage.latest_meta(camera) or {}
        taken = meta.get("ts")
        return data, float(taken) if isinstance(taken, int | float) else self.clock.now()

    def add_upload(self, pid: str, stage: str, data: bytes, by: Principal) -> Photo:
        self._target(pid, stage)
        if len(data) > MAX_PHOTO_BYTES:
            raise Invalid("file", f"{len(data)} bytes > {MAX_PHOTO_BYTES}")
        check_jpeg(data, self.max_pixels)
        now = self.clock.now()
        return self.add(pid, stage, "upload", None, data, now, by, now, publish=True)

    def add_from_camera(self, pid: str, stage: str, camera: str, by: Principal) -> Photo:
        """The camera's latest stored snapshot, copied."""
        self._target(pid, stage)
        data, taken = self.camera_latest(camera, "from_camera")
        return self.add(pid, stage, "camera", camera, data, taken, by, self.clock.now(), publish=True)

    def request_fresh(self, pid: str, stage: str, camera: str, by: Principal,
                      wait_s: float | None = None) -> Photo | PendingPhoto:
        """Ask the camera for a new snapshot and attach it when it arrives: the photo when it
        came within `wait_s`, else a PendingPhoto (it is attached when it comes)."""
        self._target(pid, stage)
        snapshots = self._camera(camera, "from_camera")
        now = self.clock.now()
        cmd_id = uuid.uuid4().hex
        waiting = _Waiting(PendingPhoto(cmd_id, pid, stage, camera, now), by, threading.Event())
        with self._lock:
            self._waiting[cmd_id] = waiting
        try:
            snapshots.request_snapshot(camera, wait_s=0.0, command_id=cmd_id)
        except RuntimeError as exc:  # the MQTT client is not connected
            with self._lock:
                self._waiting.pop(cmd_id, None)
            raise Unavailable(str(exc)) from None
        self.audit(by, "problem.photo.request", pid, f"stage={stage} camera={camera} command={cmd_id}")
        waiting.event.wait(self.fresh_wait_s if wait_s is None else wait_s)
        return waiting.photo if waiting.photo is not None else waiting.pending

    def on_snapshot_answer(self, device_id: str, command_ids: frozenset[str], jpeg: bytes, ts: float) -> None:
        """Called by the snapshot service (its worker thread) for a stored snapshot that
        answers commands; attaches the fresh photos this desk asked for."""
        with self._lock:
            mine = [self._waiting.pop(c) for c in command_ids if c in self._waiting]
        for w in mine:
            if w.pending.device_id != device_id:
                continue
            try:
                w.photo = self.add(w.pending.problem_id, w.pending.stage, "camera", device_id, jpeg, ts,
                                   w.by, self.clock.now(), publish=True, detail=f" command={w.pending.command_id}")
            except NotFound:
                log.info("fresh snapshot for deleted problem %s dropped", w.pending.problem_id)
            except Exception:
                log.exception("fresh snapshot for problem %s could not be attached", w.pending.problem_id)
            finally:
                w.event.set()

    def pending(self) -> list[PendingPhoto]:
        with self._lock:
            return [w.pending for w in self._waiting.values()]

    def forget_stale(self, now: float) -> None:
        """Forget fresh-snapshot requests nobody answered within PENDING_TTL_S."""
        with self._lock:
            stale = [c for c, w in self._waiting.items() if now - w.pending.requested_at > PENDING_TTL_S]
            for c in stale:
                self._waiting.pop(c).event.set()

    def add(self, pid: str, stage: str, source: str, device_id: str | None, data: bytes, taken_at: float,
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
