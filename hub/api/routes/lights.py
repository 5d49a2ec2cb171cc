"""Street-light routes (issue 14 contract; docs/lights.md): list, commands with delivery, sun times."""

from __future__ import annotations

import contextlib
from datetime import date, datetime
from typing import Literal

from fastapi import APIRouter, HTTPException, Path, Query, status

from hub.api.deps import LightsDep, Operator, ServicesDep, Viewer
from hub.api.errors import unprocessable
from hub.api.schemas.lights import (
    BatchOut,
    CommandCreated,
    CommandIn,
    CommandRef,
    DeliveryOut,
    LightItem,
    LightList,
    SunOut,
)
from hub.lights.service import NoTargets
from hub.lights.sun import NoSunEvent

router = APIRouter(prefix="/api/v1/lights", tags=["lights"])


@router.get("", response_model=LightList, summary="Street lights with presence and their latest values")
def list_lights(
    _: Viewer, svc: LightsDep,
    village: str | None = None, group: str | None = None,
    status_: Literal["online", "offline", "unknown"] | None = Query(None, alias="status"),
    fault: bool | None = Query(None, description="true: only lamps reporting a fault; false: only healthy"),
) -> LightList:
    items = [
        i for i in svc.lights()
        if (village is None or i["village"] == village) and (group is None or i["group"] == group)
        and (status_ is None or i["status"] == status_)
        and (fault is None or bool(i["fault"]) == fault)
    ]
    return LightList(items=[LightItem(**i) for i in items], total=len(items))


@router.post("/commands", status_code=202, response_model=CommandCreated,
             summary="Switch, dim or schedule street lights (operator)")
def post_command(body: CommandIn, services: ServicesDep, who: Operator, svc: LightsDep) -> CommandCreated:
    try:
        batch, deliveries = svc.command(body.targets.to_targets(), body.action, by=who.name,
                                        level=body.level, schedule=body.to_schedule())
    except NoTargets as exc:
        raise unprocessable(("body", "targets"), str(exc)) from None
    except NoSunEvent as exc:
        raise unprocessable(("body", "schedule"), f"no sunrise or sunset here: {exc}") from None
    services.tokens.audit(who, "lights.command", batch.id, f"{body.action} × {len(deliveries)}")
    return CommandCreated(id=batch.id, commands=[CommandRef(device=d.device, command_id=d.command_id)
                                                 for d in deliveries])


@router.get("/commands/{batch_id}", response_model=BatchOut, summary="One command batch with each lamp's delivery")
def get_command(_: Viewer, svc: LightsDep, batch_id: str = Path(max_length=64)) -> BatchOut:
    found = svc.batch(batch_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no light command {batch_id!r}")
    batch, deliveries = found
    return BatchOut(id=batch.id, action=batch.action, created_at=batch.created_at, by=batch.by,
                    level=batch.body.get("level"), schedule=batch.body.get("schedule"),
                    targets=batch.body.get("targets", {}),
                    deliveries=[DeliveryOut(**d.to_json()) for d in deliveries])


@router.get("/sun", response_model=SunOut, summary="Sunrise and sunset at the township's coordinates")
def sun(services: ServicesDep, _: Viewer, svc: LightsDep,
        date_: str | None = Query(None, alias="date", description="YYYY-MM-DD; default today (VH_TZ)")) -> SunOut:
    if date_ is None:
        day = datetime.fromtimestamp(services.clock.now(), svc.zone).date()
    else:
        try:
            day = date.fromisoformat(date_)
        except ValueError:
            raise unprocessable(("query", "date"), "must be a date YYYY-MM-DD") from None
    lat, lon = svc.position()
    rise: str | None = None
    set_: str | None = None
    with contextlib.suppress(NoSunEvent):  # polar day or night: no sunrise, no sunset
        rise, set_ = svc.sun(day).iso(svc.zone)
    return SunOut(date=day.isoformat(), sunrise=rise, sunset=set_, lat=lat, lon=lon, tz=svc.config.tz)
