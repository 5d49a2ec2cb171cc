"""The API app factory: one router per resource, shared limits, the services container in app.state."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from hub import __version__
from hub.api.bodylimit import BodyLimit
from hub.api.routes import (
    alerts,
    broadcasts,
    devices,
    health,
    lights,
    media,
    overview,
    problems,
    rankings,
    registry,
    snapshots,
    stream,
    tokens,
    wallscreen,
)
from hub.services import Services

REPO_ROOT = Path(__file__).resolve().parents[2]

# In this order: a request goes to the first route that matches it.
ROUTERS = (health.router, overview.router, devices.router, alerts.router, tokens.router, stream.router,
           snapshots.router, broadcasts.router, media.router, problems.router, rankings.router,
           lights.router, registry.router, wallscreen.router)


def create_app(services: Services, dashboards_dir: Path | None = None) -> FastAPI:
    app = FastAPI(
        title="VillageHub",
        version=__version__,
        description="Monitoring hub for smart villages: cameras, smart loudspeakers, the wall screen. "
        "Every /api/v1 route needs `Authorization: Bearer <token>`; roles viewer < operator < admin.",
    )
    app.state.services = services
    # Per-app state of the routers (one app per services container).
    app.state.overview_cache = overview.OverviewCache()
    app.state.ui_audit_rate = tokens.new_ui_audit_rate()
    app.state.wall_screen = wallscreen.WallScreenFiles.find(dashboards_dir or REPO_ROOT / "dashboards",
                                                           services.settings.township.boundary_geojson)

    # Body limits; large uploads (routes listed in hub.api.bodylimit) authenticate first.
    app.add_middleware(BodyLimit, services=services)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
            errors.append({"field": ".".join(loc) or "body", "message": err.get("msg", "invalid"),
                           "type": err.get("type")})
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse({"detail": summary, "errors": errors}, status_code=422)

    for router in ROUTERS:
        app.include_router(router)
    return app
