"""Liveness, readiness and Prometheus metrics (PROTOCOL §7: no auth by default)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from hub import metrics
from hub.api.deps import ServicesDep, authenticate, get_services
from hub.services import Services


def _metrics_auth(request: Request) -> None:
    services: Services = get_services(request)
    if services.settings.http.metrics_auth:
        authenticate(request, services)


router = APIRouter(tags=["health"])


@router.get("/healthz", summary="200 while the process runs")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="200 when the broker and the time-series store are reachable, else 503")
async def readyz(services: ServicesDep) -> JSONResponse:
    mqtt_ok = services.mqtt_connected
    store_ok = await run_in_threadpool(services.store.ping)
    body = {
        "status": "ready" if mqtt_ok and store_ok else "not ready",
        "mqtt": "ok" if mqtt_ok else "unreachable",
        "store": "ok" if store_ok else "unreachable",
        "store_kind": services.store.name,
    }
    return JSONResponse(body, status_code=200 if mqtt_ok and store_ok else 503)


@router.get("/metrics", summary="Prometheus text format", dependencies=[Depends(_metrics_auth)],
            response_class=Response)
def prometheus() -> Response:
    try:
        body = generate_latest(metrics.REGISTRY)
    except Exception as exc:  # pragma: no cover - a collector bug must not hide the rest
        raise HTTPException(500, f"metrics collection failed: {exc}") from exc
    return Response(body, media_type=CONTENT_TYPE_LATEST)

