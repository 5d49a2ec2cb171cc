"""Street-light routes (issue 14 contract; docs/lights.md): list, commands with delivery, sun times."""

from __future__ import annotations

import contextlib
from datetime import date, datetime
from typing import Literal

from fastapi import APIRouter, HTTPException, Path, Query, status
from fastapi.exceptions import RequestValidationError

from hub.api.deps import Operator, ServicesDep, Viewer
from hub.lights.api_models import (
    BatchOut,
    CommandCreated,
    CommandIn,
    CommandRef,
    DeliveryOut,
    LightItem,
    LightList,
    SunOut,
)
from hub.lights.service import LightService, NoTargets
from hub.lights.sun import NoSunEvent
from hub.services import Services


def _service(services: Services) -> LightService:
    svc = services.lights
    if svc is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "street lights are not available")
    return svc


def _unprocessable(loc: tuple[str, ...], msg: str) -> RequestValidationError:
    return RequestValidationError([{"loc": loc, "msg": msg, "type": "value_error"}])


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1/lights", tags=["lights"])

    @router.get("", response_model=LightList, summary="Street lights with presence and their latest values")
    def list_lights(
        services: ServicesDep, _: Viewer,
        village: str | None = None, group: str | None = None,
        status_: Literal["online", "offline", "unknown"] | None = Query(None, alias="status"),
        fault: bool | None = Query(None, description="true: only lamps reporting a fault; false: only healthy"),
    ) -> LightList:
        items = [
            i for i in _service(services).lights()
            if (village is None or i["village"] == village) and (group is None or i["group"] == group)
            and (status_ is None or i["status"] == status_)
            and (fault is None or bool(i["fault"]) == fault)
        ]
        return LightList(items=[LightItem(**i) for i in items], total=len(items))

    @router.post("/commands", status_code=202, response_model=CommandCreated,
                 summary="Switch, dim or schedule street lights (operator)")
    def post_command(body: CommandIn, services: ServicesDep, who: Operator) -> CommandCreated:
        svc = _service(services)
        try:
            batch, deliveries = svc.command(body.targets.to_targets(), body.action, by=who.name,
                                            level=body.level, schedule=body.to_schedule())
        except NoTargets as exc:
            raise _unprocessable(("body", "targets"), str(exc)) from None
        except NoSunEvent as exc:
            raise _unprocessable(("body", "schedule"), f"no sunrise or sunset here: {exc}") from None
        services.tokens.audit(who, "lights.command", batch.id, f"{body.action} × {len(deliveries)}")
        return CommandCreated(id=batch.id, commands=[CommandRef(device=d.device, command_id=d.command_id)
                                                     for d in deliveries])

    @router.get("/commands/{batch_id}", response_model=BatchOut, summary="One command batch with each lamp's delivery")
    def get_command(services: ServicesDep, _: Viewer,
                    batch_id: str = Path(max_length=64)) -> BatchOut:
        found = _service(services).batch(batch_id)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no light command {batch_id!r}")
        batch, deliveries = found
        return BatchOut(id=batch.id, action=batch.action, created_at=batch.created_at, by=batch.by,
                        level=batch.body.get("level"), schedule=batch.body.get("schedule"),
                        targets=batch.body.get("targets", {}),
                        deliveries=[DeliveryOut(**d.to_json()) for d in deliveries])

    @router.get("/sun", response_model=SunOut, summary="Sunrise and sunset at the township's coordinates")
    def sun(services: ServicesDep, _: Viewer,
            date_: str | None = Query(None, alias="date", description="YYYY-MM-DD; default today (VH_TZ)")) -> SunOut:
        svc = _service(services)
        if date_ is None:
            day = datetime.fromtimestamp(services.clock.now(), svc.zone).date()
        else:
            try:
                day = date.fromisoformat(date_)
            except ValueError:
                raise _unprocessable(("query", "date"), "must be a date YYYY-MM-DD") from None
        lat, lon = svc.position()
        rise: str | None = None
        set_: str | None = None
        with contextlib.suppress(NoSunEvent):  # polar day or night: no sunrise, no sunset
            rise, set_ = svc.sun(day).iso(svc.zone)
        return SunOut(date=day.isoformat(), sunrise=rise, sunset=set_, lat=lat, lon=lon, tz=svc.config.tz)

    return router
