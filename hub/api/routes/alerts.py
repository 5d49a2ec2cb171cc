"""Alerts: open and recent; operators acknowledge."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query

from hub.api.deps import Operator, ServicesDep, Viewer

SQLITE_MAX_INT = 2**63 - 1  # alert ids are SQLite rowids

router = APIRouter(prefix="/api/v1", tags=["alerts"])


@router.get("/alerts", summary="Open and recent alerts")
def list_alerts(
    services: ServicesDep,
    _: Viewer,
    state: Literal["open", "all"] = "all",
    limit: int = Query(200, ge=1, le=1000),
) -> dict[str, Any]:
    alerts = services.alerts.open_alerts() if state == "open" else services.alerts.recent(limit)
    return {"items": [a.to_json() for a in alerts[:limit]]}


@router.post("/alerts/{alert_id}/ack", summary="Acknowledge an alert")
def ack(alert_id: Annotated[int, Path(ge=1, le=SQLITE_MAX_INT)], services: ServicesDep,
        who: Operator) -> dict[str, Any]:
    alert = services.alerts.acknowledge(alert_id, who.name, services.clock.now())
    if alert is None:
        raise HTTPException(404, f"unknown alert {alert_id}")
    services.tokens.audit(who, "alert.ack", str(alert_id))
    return alert.to_json()

