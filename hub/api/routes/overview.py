"""The township at a glance: counts by kind, village and status; alerts; broadcasts; 24 h history."""

from __future__ import annotations

import logging
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from hub.api.deps import ServicesDep, Viewer
from hub.devices.fleet import count_fleet, zero_counts
from hub.services import Services

log = logging.getLogger(__name__)
OVERVIEW_KINDS = ("camera", "speaker")  # street lights have their own page
OVERVIEW_CACHE_S = 1.0  # the wall screen and many clients may ask at once; counts change slowly


def compute_overview(services: Services) -> dict[str, Any]:
    counts = count_fleet(services.registry.devices(), services.live.statuses())
    by_kind = {kind: dict(counts.kind(kind)) for kind in OVERVIEW_KINDS}
    villages: dict[str, dict[str, Any]] = {}
    for v in services.registry.villages():
        in_village = counts.by_village.get(v.id)
        villages[v.id] = {"id": v.id, "name": v.name, "lat": v.lat, "lon": v.lon,
                          **{kind: dict(in_village[kind]) if in_village else zero_counts() for kind in OVERVIEW_KINDS},
                          "alerts_open": 0}
    open_alerts = services.alerts.open_alerts()
    for a in open_alerts:
        if a.village and a.village in villages:
            villages[a.village]["alerts_open"] += 1
    broadcasts: dict[str, Any] = {"playing": [], "next": [], "today": 0}
    if services.broadcasts is not None:
        try:
            broadcasts = {"playing": services.broadcasts.now_playing(), "next": services.broadcasts.next_up(5),
                          "today": _today_count(services)}
        except Exception:  # the overview must answer even if a broadcast record is odd
            log.exception("broadcast overview failed")
    mqtt_ok = services.mqtt_connected
    return {
        "township": services.settings.township.name,
        "ts": services.clock.now(),
        "devices": by_kind,
        "villages": list(villages.values()),
        "alerts_open": len(open_alerts),
        "broadcasts": broadcasts,
        "health": {"mqtt": mqtt_ok, "store": services.writer.state == "ok", "store_kind": services.store.name},
    }


def _today_count(services: Services) -> int:
    from datetime import datetime, time, timedelta

    now = datetime.fromtimestamp(services.clock.now(), services.settings.zone)
    start = datetime.combine(now.date(), time(0), services.settings.zone)
    end = start + timedelta(days=1)
    return len(services.broadcasts.calendar(start.timestamp(), end.timestamp()))


class OverviewCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._at = -1e9
        self._value: dict[str, Any] | None = None

    def get(self, services: Services) -> dict[str, Any]:
        now = services.clock.monotonic()
        with self._lock:
            if self._value is not None and now - self._at < OVERVIEW_CACHE_S:
                return self._value
        value = compute_overview(services)
        with self._lock:
            self._value, self._at = value, now
        return value


def overview_cache(request: Request) -> OverviewCache:
    """The app's cache (made by `create_app`: one per app, as one per services container)."""
    return request.app.state.overview_cache  # type: ignore[no-any-return]


router = APIRouter(prefix="/api/v1", tags=["overview"])


@router.get("/overview", summary="Counts online/offline by kind and village, open alerts, broadcasts")
def overview(services: ServicesDep, _: Viewer, cache: Annotated[OverviewCache, Depends(overview_cache)]) -> dict[str, Any]:
    return cache.get(services)


@router.get("/stats/history", summary="Per-minute fleet history for the wall screen's 24 h charts")
def history(services: ServicesDep, _: Viewer, hours: float = Query(24, gt=0, le=24)) -> dict[str, Any]:
    since = services.clock.now() - hours * 3600
    return {"every": 60, "points": services.live.history(since)}
