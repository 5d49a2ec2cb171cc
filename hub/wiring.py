"""Wires the snapshot and broadcast services into the services container (part of the composition root)."""

from __future__ import annotations

from collections.abc import Callable

from hub.encode import point_sink
from hub.messages import Point
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

    from hub.broadcasts.config import BroadcastConfig
    from hub.broadcasts.media import MediaStore
    from hub.broadcasts.model import SpeakerRef
    from hub.broadcasts.schedule import QuietHours
    from hub.broadcasts.service import BroadcastService

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
    attach_problems_and_rankings(services, emit_points)
    attach_lights(services, emit_points)


def attach_lights(services: Services, emit_points: Callable[[list[Point]], None]) -> None:
    """Street lights: commands, delivery, alarms, sun times (docs/lights.md)."""
    from hub.lights.service import LightConfig, LightService

    s = services.settings
    services.lights = LightService(
        store_path=s.data_dir / "lights.db", clock=services.clock, registry=services.registry,
        live=services.live, publish=services.publish, emit_points=emit_points, alerts=services.alerts,
        events=services.bus, config=LightConfig(topic_root=s.topic_root, tz=s.tz, lat=s.township_lat,
                                                lon=s.township_lon),
    )


def attach_problems_and_rankings(services: Services, emit_points: Callable[[list[Point]], None]) -> None:
    """The problem ledger and the village ranking (docs/problems.md, docs/rankings.md)."""
    from hub.problems.service import DeviceInfo, Places, ProblemService
    from hub.problems.store import ProblemStore
    from hub.rankings.scoring import parse_weights
    from hub.rankings.service import RankingService, Sources

    s, reg = services.settings, services.registry

    def device(device_id: str) -> DeviceInfo | None:
        d = reg.get(device_id)
        return DeviceInfo(d.kind, d.village, d.group) if d is not None else None

    def village_name(village_id: str) -> str | None:
        v = reg.get_village(village_id)
        return v.name if v is not None else None

    def group_village(group_id: str) -> str | None:
        g = reg.get_group(group_id)
        return g.village if g is not None else None

    store = ProblemStore(s.data_dir / "problems.db", s.data_dir / "problems")
    services.problems = ProblemService(
        store=store, clock=services.clock, zone=s.zone, places=Places(device, village_name, group_village),
        alerts=services.alerts, events=services.bus, emit_points=emit_points, audit=services.tokens.audit,
        snapshots=services.snapshots, max_pixels=s.snapshot_max_pixels,
    )
    services.rankings = RankingService(
        sources=Sources(store=services.store, alerts=services.alerts, problems=store,
                        broadcasts=lambda: services.broadcasts.store if services.broadcasts else None),
        villages=lambda: [(v.id, v.name) for v in reg.villages()], clock=services.clock, zone=s.zone,
        weights=parse_weights(s.ranking_weights), alarm_ack_limit_s=s.alarm_ack_limit_s,
    )
