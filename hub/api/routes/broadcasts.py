"""Broadcast routes of PROTOCOL §7: schedule, list, one with deliveries, cancel, calendar."""

from __future__ import annotations

import math
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Path, Query, status

from hub.api.deps import BroadcastsDep, MediaUrlAllowDep, Operator, Viewer
from hub.api.errors import unprocessable
from hub.api.schemas.broadcasts import (
    AudioMedia,
    BroadcastIn,
    BroadcastList,
    BroadcastOut,
    Calendar,
    Created,
    QuietHoursIn,
)
from hub.api.timeparams import parse_time
from hub.broadcasts.media import MediaError
from hub.broadcasts.model import EMERGENCY_PRIORITY, NotFound
from hub.broadcasts.schedule import ScheduleError
from hub.broadcasts.service import BroadcastService
from hub.mediaurl import media_url_error
from hub.ports import Principal
from hub.topics import ID_PATTERN

MAX_TS = 7_258_118_400.0  # 2200-01-01


def _parse_time(value: str, name: str, zone: str, now: float) -> float:
    try:
        t = parse_time(value, now, ZoneInfo(zone))
    except (ValueError, OverflowError) as exc:
        raise unprocessable(["query", name], str(exc)) from None
    if not (math.isfinite(t) and 0 <= t <= MAX_TS):
        raise unprocessable(["query", name], "must be a time between 1970 and 2200")
    return t


def _check_media_url(body: BroadcastIn, service: BroadcastService, allow: tuple[str, ...]) -> None:
    """An audio `media.url` must be the hub's own copy of the file or under an allowed prefix."""
    media = body.media
    if isinstance(media, AudioMedia) and media.url is not None:
        hub_url = service.media.base_url if service.media is not None else service.config.media_base_url
        why = media_url_error(str(media.url), media.sha256, hub_url, allow)
        if why:
            raise unprocessable(["body", "media", "url"], why)


def _need_admin_for(priority: int, who: Principal, what: str) -> None:
    if priority >= EMERGENCY_PRIORITY and who.role != "admin":
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"priority {priority} is an emergency broadcast (8 and above): "
            f"{what} it needs the admin role, you are {who.role}")


router = APIRouter(prefix="/api/v1/broadcasts", tags=["broadcasts"])


@router.post("", status_code=201, response_model=Created, summary="Schedule a broadcast",
             responses={403: {"description": "priority ≥ 8 needs the admin role"}})
def create(body: BroadcastIn, who: Operator, service: BroadcastsDep, allow: MediaUrlAllowDep) -> Created:
    _need_admin_for(body.priority, who, "scheduling")
    _check_media_url(body, service, allow)
    try:
        return Created(id=service.create(body.to_spec(), who.name))
    except ScheduleError as exc:
        raise unprocessable(["body", "schedule"], str(exc)) from None
    except MediaError as exc:
        raise unprocessable(["body", *exc.field.split(".")], str(exc)) from None


@router.get("", response_model=BroadcastList, summary="Broadcasts, newest first")
def list_broadcasts(
    _: Viewer,
    service: BroadcastsDep,
    status_: Literal["active", "finished", "cancelled"] | None = Query(None, alias="status"),
    limit: int = Query(200, ge=1, le=1000),
) -> dict[str, Any]:
    return {"items": service.list_broadcasts(status_, limit)}


@router.get("/calendar", response_model=Calendar,
            summary="Occurrences between from and to (fired, missed and scheduled)")
def calendar(
    _: Viewer,
    service: BroadcastsDep,
    from_: str = Query(..., alias="from", min_length=1, description="Unix seconds or ISO 8601"),
    to: str = Query(..., min_length=1, description="Unix seconds or ISO 8601"),
) -> dict[str, Any]:
    now = service.clock.now()
    start = _parse_time(from_, "from", service.config.tz, now)
    end = _parse_time(to, "to", service.config.tz, now)
    if end < start:
        raise unprocessable(["query", "to"], "must not be before from")
    if end - start > 366 * 86400:
        raise unprocessable(["query", "to"], "at most one year after from")
    return {"start": start, "end": end, "items": service.calendar(start, end)}


@router.get("/now", summary="Broadcasts playing now and next up (wall screen, overview)")
def now(_: Viewer, service: BroadcastsDep) -> dict[str, Any]:
    return {"playing": service.now_playing(), "next": service.next_up()}


@router.get("/quiet-hours", summary="Quiet hours: the default and each village's own")
def quiet_hours(_: Viewer, service: BroadcastsDep) -> dict[str, Any]:
    return service.quiet_hours()


@router.put("/quiet-hours/{village}", summary="Set a village's quiet hours (admin)",
            responses={403: {"description": "needs the admin role"}})
def set_quiet_hours(
    body: QuietHoursIn,
    who: Operator,
    service: BroadcastsDep,
    village: str = Path(pattern=ID_PATTERN),
) -> dict[str, Any]:
    if who.role != "admin":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "setting quiet hours needs the admin role")
    service.set_quiet_hours(village, body.start, body.end, who.name)
    return service.quiet_hours()


@router.get("/{broadcast_id}", response_model=BroadcastOut,
            summary="One broadcast with each occurrence and each speaker's delivery state",
            responses={404: {"description": "unknown broadcast"}})
def get_one(
    broadcast_id: str,
    _: Viewer,
    service: BroadcastsDep,
    detailed: int = Query(5, ge=0, le=100,
                          description="latest occurrences listed speaker by speaker"),
) -> dict[str, Any]:
    try:
        return service.get(broadcast_id, detailed=detailed)
    except NotFound:
        raise HTTPException(404, f"unknown broadcast {broadcast_id}") from None


@router.post("/{broadcast_id}/cancel", response_model=BroadcastOut,
             summary="Cancel future occurrences and stop it where it plays",
             responses={403: {"description": "cancelling an emergency needs the admin role"},
                        404: {"description": "unknown broadcast"}})
def cancel(broadcast_id: str, who: Operator, service: BroadcastsDep) -> dict[str, Any]:
    try:
        current = service.get(broadcast_id, upcoming=0, detailed=0)
    except NotFound:
        raise HTTPException(404, f"unknown broadcast {broadcast_id}") from None
    _need_admin_for(current["priority"], who, "cancelling")
    service.cancel(broadcast_id, who.name)
    return service.get(broadcast_id)
