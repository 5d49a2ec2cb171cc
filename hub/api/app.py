"""The API app factory: one router per resource, shared limits, the services container in app.state."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from hub import __version__
from hub.api.deps import require_admin, require_operator, require_viewer
from hub.api.routes import alerts, devices, health, overview, stream, tokens
from hub.services import Services

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 * 1024 * 1024  # JSON bodies
LARGE_BODY_PREFIXES = {"/api/v1/media": 50 * 1024 * 1024, "/api/v1/registry/import": 32 * 1024 * 1024,
                       "/api/v1/problems": 9 * 1024 * 1024}  # photo uploads: an 8 MiB JPEG + multipart
REPO_ROOT = Path(__file__).resolve().parents[2]


def _body_limit(path: str) -> int:
    for prefix, limit in LARGE_BODY_PREFIXES.items():
        if path.startswith(prefix):
            return limit
    return MAX_BODY_BYTES


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

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        limit = _body_limit(request.url.path)
        length = request.headers.get("content-length")
        if length is not None:
            try:
                too_big = int(length) > limit
            except ValueError:
                return JSONResponse({"detail": "bad Content-Length"}, status_code=400)
            if too_big:
                return JSONResponse({"detail": f"request body over {limit} bytes"}, status_code=413)
        elif request.method in ("POST", "PUT", "PATCH") and "chunked" in request.headers.get(
            "transfer-encoding", ""
        ):
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    return JSONResponse({"detail": f"request body over {limit} bytes"}, status_code=413)
            request._body = body  # starlette reads it from here
        return await call_next(request)

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
        r = _optional_router("hub.api.routes.broadcasts", services.broadcasts, require_viewer, require_operator)
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
    r = _optional_router("hub.api.routes.registry", services.registry, require_viewer, require_admin)
    if r is not None:
        app.include_router(r)
    r = _optional_router("hub.api.routes.wallscreen", dashboards_dir or REPO_ROOT / "dashboards",
                         services.settings.boundary_geojson)
    if r is not None:
        app.include_router(r)
    return app
