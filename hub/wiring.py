"""Wires the snapshot and broadcast services into the services container (part of the composition root)."""

from __future__ import annotations

from hub.encode import point_sink
from hub.services import Services


def attach_optional_services(services: Services) -> None:
    s = services.settings
    emit_points = point_sink(services.writer)

    from hub.snapshots.config import SnapshotConfig
    from hub.snapshots.service import SnapshotService
    from hub.snapshots.storage import SnapshotStorage

    def lookup(device_id: str) -> tuple[str, str] | None:
        dev = services.registry.get(device_id)
        return (dev.village or "", dev.group or "") if dev else None

    services.snapshots = SnapshotService(
        storage=SnapshotStorage(s.data_dir / "snapshots"),
        clock=services.clock,
        emit_points=emit_points,
        alerts=services.alerts,
        events=services.bus,
        lookup=lookup,
        publisher=services,
        topic_root=s.topic_root,
        config=SnapshotConfig(max_bytes=s.snapshot_max_bytes, max_pixels=s.snapshot_max_pixels,
                              clock_skew_s=s.clock_skew_s),
    )

    from hub.broadcasts.media import MediaStore
    from hub.broadcasts.model import SpeakerRef
    from hub.broadcasts.schedule import QuietHours
    from hub.broadcasts.service import BroadcastConfig, BroadcastService

    def list_speakers() -> list[SpeakerRef]:
        return [SpeakerRef(d.id, d.village, d.group) for d in services.registry.devices(kind="speaker")]

    def is_online(device_id: str) -> bool:
        return services.live.status(device_id) == "online"

    quiet = s.broadcast_quiet_hours.split("-")
    public_url = s.public_url or f"http://{s.http_host}:{s.http_port}"
    services.broadcasts = BroadcastService(
        store_path=s.data_dir / "broadcasts.db",
        clock=services.clock,
        list_speakers=list_speakers,
        is_online=is_online,
        publish=services.publish,
        emit_points=emit_points,
        alerts=services.alerts,
        events=services.bus,
        config=BroadcastConfig(topic_root=s.topic_root, tz=s.tz, media_base_url=public_url,
                               grace_s=s.broadcast_grace_s, quiet_hours=QuietHours.parse(*quiet)),
        media=MediaStore(s.data_dir / "media", public_url),
    )
