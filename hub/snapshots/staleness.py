"""Cameras whose heartbeat is fresh but whose snapshots stopped: flagged (a `snapshot_stale`
alert) by a periodic check, cleared by the next analysed snapshot."""

from __future__ import annotations

from collections.abc import Iterable

from hub.ports import AlertSink
from hub.snapshots.cameras import Camera, Cameras
from hub.snapshots.config import SnapshotConfig
from hub.snapshots.ports import HeartbeatLastSeen


def stale_key(device_id: str) -> str:
    return f"camera:{device_id}:stale"


def check_staleness(
    cams: Cameras, *, alerts: AlertSink, config: SnapshotConfig, started_at: float, now: float,
    heartbeat_last_seen: HeartbeatLastSeen, cameras: Iterable[str] = (),
) -> list[str]:
    """Flag cameras whose heartbeat is fresh but whose snapshots stopped; clear the others.

    `cameras`: registered camera ids, so a camera that never sent a snapshot since the hub
    started (`started_at`) is flagged too. Returns the stale ids.
    """
    stale: list[str] = []
    for device_id in cams.ids() | set(cameras):
        cam = cams.camera(device_id)
        last = cam.last_snapshot_at if cam.last_snapshot_at is not None else started_at
        hb = heartbeat_last_seen(device_id)
        is_stale = hb is not None and now - hb <= config.heartbeat_fresh_s and now - last > config.stale_after_s
        key = stale_key(device_id)
        if is_stale and not cam.stale:
            alerts.raise_alert(
                key, device_id=device_id, type="snapshot_stale", severity="warning",
                message=f"摄像头 {device_id}：心跳正常但 {(now - last) / 60:.0f} 分钟无抓拍图像", ts=now,
            )
        elif cam.stale and not is_stale:
            alerts.clear_alert(key, now)
        cam.stale = is_stale
        if is_stale:
            stale.append(device_id)
    cams.health_gauges()
    return sorted(stale)


def snapshot_arrived(cam: Camera, device_id: str, alerts: AlertSink, ts: float) -> None:
    """A stale camera sent a snapshot again: clear its flag and alert."""
    if cam.stale:
        cam.stale = False
        alerts.clear_alert(stale_key(device_id), ts)
