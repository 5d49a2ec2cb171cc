"""Devices: the registry joined with live state (never a time-series query on the list path)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query
from starlette.concurrency import run_in_threadpool

from hub.api.deps import ServicesDep, Viewer
from hub.api.redact import for_principal
from hub.api.timeparams import parse_duration, parse_time
from hub.devices.heartbeat import FIELDS_BY_KIND
from hub.services import Services
from hub.topics import is_valid_id
from hub.tsdb.base import SeriesQuery, StoreError

MAX_PAGE = 1000
MAX_BUCKETS = 10_000
SNAPSHOT_FIELDS = frozenset({"brightness", "contrast", "sharpness", "colourfulness", "bytes", "width",
                             "height", "uniform_fraction", "frame_diff", "reference_diff"})
HEARTBEAT_NUMERIC = frozenset(
    name for fields in FIELDS_BY_KIND.values() for name in fields if name not in ("fw", "stream_url", "ts")
)


def _camera_health(services: Services, device_id: str) -> str | None:
    snaps = services.snapshots
    if snaps is None:
        return None
    try:
        h = snaps.camera_health(device_id)
    except Exception:
        return None
    if not h:
        return None
    return "stale" if h.get("stale") else h.get("health")


def device_item(services: Services, dev: Any, status: str, last_seen: float | None) -> dict[str, Any]:
    item = {
        "id": dev.id, "kind": dev.kind, "village": dev.village, "group": dev.group, "name": dev.name,
        "status": status, "last_seen": last_seen, "lat": dev.lat, "lon": dev.lon,
        "registered": dev.registered,
    }
    if dev.kind == "camera":
        item["health"] = _camera_health(services, dev.id)
    return item


router = APIRouter(prefix="/api/v1", tags=["devices"])


@router.get("/devices", summary="Devices with presence; filter by kind, village, group, status")
def list_devices(
    services: ServicesDep,
    _: Viewer,
    kind: Literal["camera", "speaker", "light"] | None = None,
    village: str | None = None,
    group: str | None = None,
    status: Literal["online", "offline", "unknown"] | None = None,
    registered: bool | None = None,
    limit: int = Query(100, ge=1, le=MAX_PAGE),
    offset: int = Query(0, ge=0),
) -> dict[str, Any]:
    live = services.live
    devices = services.registry.devices(kind=kind, village=village, group=group)
    if registered is not None:
        devices = [d for d in devices if d.registered == registered]
    if status is not None:
        devices = [d for d in devices if live.peek(d.id)[0] == status]
    page = devices[offset : offset + limit]
    return {
        "items": [device_item(services, d, *live.peek(d.id)) for d in page],
        "total": len(devices), "limit": limit, "offset": offset,
    }


@router.get("/devices/{device_id}", summary="One device with its latest heartbeat values")
def get_device(device_id: str, services: ServicesDep, who: Viewer) -> dict[str, Any]:
    dev = services.registry.get(device_id) if is_valid_id(device_id) else None
    if dev is None:
        raise HTTPException(404, f"unknown device {device_id[:64]!r}")
    live, status, reason = services.live.get(device_id)
    item = device_item(services, dev, status, live.last_seen if live else None)
    item.update({
        "tags": dev.tags, "stream_url": dev.stream_url,
        "heartbeat": live.values if live else {},
        "presence_reason": reason,
        "heartbeats_received": live.heartbeats if live else 0,
        "heartbeats_lost": live.lost if live else 0,
        "clock_skew_s": live.clock_skew_s if live else None,
    })
    return for_principal(who, item)  # stream URLs keep their credentials for admins only


@router.get("/devices/{device_id}/series", summary="Time-bucketed values of one field")
async def series(
    device_id: str,
    services: ServicesDep,
    _: Viewer,
    field: str = Query(..., description="a heartbeat field (fps, temp_c, volume, …) or snapshot metric"),
    start: str = Query("-24h", description="Unix s, ISO 8601, now, or relative like -6h"),
    end: str = Query("now"),
    every: str = Query("5m", description="bucket width: 60, 30s, 5m, 1h"),
    aggregate: Literal["mean", "min", "max", "last", "count", "sum"] = "mean",
) -> dict[str, Any]:
    if services.registry.get(device_id) is None:
        raise HTTPException(404, f"unknown device {device_id[:64]!r}")
    if field in HEARTBEAT_NUMERIC:
        measurement = "heartbeat"
    elif field in SNAPSHOT_FIELDS:
        measurement = "snapshot"
    else:
        raise HTTPException(422, f"field: unknown field {field[:64]!r}; one of "
                            f"{', '.join(sorted(HEARTBEAT_NUMERIC | SNAPSHOT_FIELDS))}")
    now = services.clock.now()
    try:
        t0 = parse_time(start, now, services.settings.zone)
        t1 = parse_time(end, now, services.settings.zone)
        step = parse_duration(every)
    except ValueError as exc:
        raise HTTPException(422, f"start/end/every: {exc}") from None
    if step <= 0 or t1 <= t0:
        raise HTTPException(422, "start/end/every: end must be after start and every > 0")
    if (t1 - t0) / step > MAX_BUCKETS:
        raise HTTPException(422, f"every: too many buckets (max {MAX_BUCKETS}); use a wider bucket")
    q = SeriesQuery(measurement, field, t0, t1, step, aggregate, (("device", device_id),))
    try:
        buckets = await run_in_threadpool(services.store.series, q)
    except StoreError as exc:
        raise HTTPException(503, f"time-series store unavailable: {exc}") from None
    return {"device": device_id, "field": field, "measurement": measurement, "every": step,
            "start": t0, "end": t1, "aggregate": aggregate,
            "points": [[b.start, b.value] for b in buckets]}
