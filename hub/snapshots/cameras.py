"""What the hub knows about each camera's image: health (with its hysteresis), per-camera
thresholds, the last analysed snapshot, whether snapshots stopped; the health alerts and
gauges; the views the API reads."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hub import metrics
from hub.clock import Clock
from hub.ports import AlertSink
from hub.snapshots.config import SnapshotConfig
from hub.snapshots.health import HEALTH_STATES, CameraHealth, Condition, HealthUpdate, Thresholds
from hub.snapshots.storage import SnapshotStorage
from hub.topics import is_valid_id

SEVERITY = {Condition.COVERED: "critical", Condition.MOVED: "critical", Condition.DARK: "warning",
            Condition.BLURRED: "warning", Condition.FROZEN: "warning"}


@dataclass
class Camera:
    health: CameraHealth = field(default_factory=CameraHealth)
    thresholds: Thresholds | None = None
    last_snapshot_at: float | None = None  # hub time of the last analysed snapshot
    last: dict[str, Any] = field(default_factory=dict)  # metrics of the last analysed snapshot
    stale: bool = False


@dataclass(kw_only=True)
class Cameras:
    config: SnapshotConfig
    storage: SnapshotStorage
    alerts: AlertSink
    clock: Clock
    _cams: dict[str, Camera] = field(default_factory=dict, init=False)

    def camera(self, device_id: str) -> Camera:
        """The camera's state, created on first use."""
        try:
            return self._cams[device_id]
        except KeyError:  # setdefault: two workers may meet a new camera at once
            return self._cams.setdefault(device_id, Camera())

    def ids(self) -> set[str]:
        return set(self._cams.copy())

    # --- health ---------------------------------------------------------------------------

    def raise_and_clear(self, device_id: str, update: HealthUpdate, ts: float) -> None:
        """The alerts of a health update (one per condition, keyed by camera and condition)."""
        for cond in update.raised:
            self.alerts.raise_alert(
                f"camera:{device_id}:{cond.value}", device_id=device_id, type=f"camera_{cond.value}",
                severity=SEVERITY[cond], message=f"摄像头 {device_id}：{_CONDITION_ZH.get(cond.value, cond.value)}", ts=ts,
            )
        for cond in update.cleared:
            self.alerts.clear_alert(f"camera:{device_id}:{cond.value}", ts)

    def health_gauges(self) -> None:
        counts = dict.fromkeys((*HEALTH_STATES, "stale"), 0)
        for cam in self._cams.copy().values():
            if cam.last_snapshot_at is not None:
                counts[cam.health.health] += 1
            counts["stale"] += cam.stale
        for state, n in counts.items():
            metrics.cameras_by_health.labels(state).set(n)

    # --- views and settings ---------------------------------------------------------------

    def camera_health(self, device_id: str) -> dict[str, Any] | None:
        """The camera's image health, or None when it never sent a snapshot (nor is stale)."""
        cam = self._cams.get(device_id)
        thresholds = dataclasses.asdict(self.thresholds_for(device_id))
        if cam is not None and (cam.last_snapshot_at is not None or cam.stale):
            return {
                "device": device_id, "health": cam.health.health, "stale": cam.stale,
                "active": sorted(c.value for c in cam.health.active),
                "last_snapshot_at": cam.last_snapshot_at, "last": cam.last, "thresholds": thresholds,
            }
        meta = self.storage.latest_meta(device_id) if is_valid_id(device_id) else None
        if meta is None:  # nothing since this start, but a snapshot from before it is on disk
            return None
        return {"device": device_id, "health": meta.get("health", "ok"), "stale": False, "active": [],
                "last_snapshot_at": None, "last": meta, "thresholds": thresholds}

    def all_health(self) -> list[dict[str, Any]]:
        ids = self.ids() | set(self.storage.devices())
        return [h for h in (self.camera_health(i) for i in sorted(ids)) if h is not None]

    def thresholds_for(self, device_id: str) -> Thresholds:
        cam = self._cams.get(device_id)
        return (cam.thresholds if cam else None) or self.config.thresholds

    def set_thresholds(self, device_id: str, overrides: Mapping[str, float]) -> Thresholds:
        """Per-camera overrides of the defaults (ValueError names a bad one)."""
        t = self.config.thresholds.with_overrides(overrides)
        self.camera(device_id).thresholds = t
        return t

    def reset_reference(self, device_id: str) -> None:
        """Forget the camera's reference view (it was re-aimed on purpose); clears `moved`."""
        cam = self.camera(device_id)
        was_moved = Condition.MOVED in cam.health.active
        cam.health.reset_reference()
        if was_moved:
            self.alerts.clear_alert(f"camera:{device_id}:moved", self.clock.now())


# Alert texts are for the command center's operators (zh-CN); the API keeps the English state names.
_CONDITION_ZH = {"dark": "画面过暗", "blurred": "画面模糊", "covered": "镜头被遮挡", "frozen": "画面冻结",
                 "moved": "镜头位置偏移"}
