"""The API app factory: one router per resource, shared limits, the services container in app.state."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from hub import __version__
from hub.api.bodylimit import BodyLimit
from hub.api.deps import require_admin, require_operator, require_viewer
from hub.api.routes import alerts, devices, health, overview, stream, tokens
from hub.broadcasts.api_models import parse_allow_list
from hub.services import Services

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]


def _optional_router(module: str, *args: Any) -> Any:
    """Routers of optional capabilities: included when their module is present."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        log.debug("router %s not available: %s", module, exc)
        return None
    build = getattr(mod, "build_router", None)
    if build is None:
        log.warning("router module %s has no build_router; not mounted", module)
        return None
    return build(*args)


def create_app(services: Services, dashboards_dir: Path | None = None) -> FastAPI:
    app = FastAPI(
        title="VillageHub",
        version=__version__,
        description="Monitoring hub for smart villages: cameras, smart loudspeakers, the wall screen. "
        "Every /api/v1 route needs `Authorization: Bearer <token>`; roles viewer < operator < admin.",
    )
    app.state.services = services

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

    app.include_router(health.build_router())
    app.include_router(overview.build_router())
    app.include_router(devices.build_router())
    app.include_router(alerts.build_router())
    app.include_router(tokens.build_router())
    app.include_router(stream.build_router())

    if services.snapshots is not None:
        r = _optional_router("hub.api.routes.snapshots", services.snapshots, require_viewer, require_operator)
        if r is not None:
            app.include_router(r)
    if services.broadcasts is not None:
        r = _optional_router("hub.api.routes.broadcasts", services.broadcasts, require_viewer, require_operator,
                             parse_allow_list(services.settings.media_url_allow))
        if r is not None:
            app.include_router(r)
        r = _optional_router("hub.api.routes.media", services.broadcasts.media, require_operator)
        if r is not None:
            app.include_router(r)
    if services.problems is not None:
        for module in ("hub.api.routes.problems", "hub.api.routes.rankings"):
            r = _optional_router(module)
            if r is not None:
                app.include_router(r)
    if services.lights is not None:
        r = _optional_router("hub.api.routes.lights")
        if r is not None:
            app.include_router(r)
    r = _optional_router("hub.api.routes.registry", services.registry, require_viewer, require_admin,
                         services.tokens.audit)
    if r is not None:
        app.include_router(r)
    r = _optional_router("hub.api.routes.wallscreen", dashboards_dir or REPO_ROOT / "dashboards",
                         services.settings.boundary_geojson)
    if r is not None:
        app.include_router(r)
    return app
