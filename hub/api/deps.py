"""Shared API dependencies, declared once: the services container, each service in it, and role checks.

Routes name what they use as `Annotated` aliases (`ServicesDep`, `BroadcastsDep`, `Viewer`, …);
a router test overrides the getter (`app.dependency_overrides[get_broadcasts] = lambda: svc`).
The container always holds every service (hub.bootstrap); role checks come first in every route.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, WebSocket, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers

from hub.auth import Principal
from hub.broadcasts.media import MediaStore
from hub.broadcasts.service import BroadcastService
from hub.lights.service import LightService
from hub.mediaurl import parse_allow_list
from hub.problems.service import ProblemService
from hub.rankings.service import RankingService
from hub.registry.store import Registry
from hub.roles import Role
from hub.services import Services
from hub.snapshots.service import SnapshotService


def get_services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(get_services)]


def _unavailable(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail)


def get_registry(services: ServicesDep) -> Registry:
    return services.registry


def get_snapshots(services: ServicesDep) -> SnapshotService:
    return services.snapshots


def get_broadcasts(services: ServicesDep) -> BroadcastService:
    return services.broadcasts


def get_media(broadcasts: Annotated[BroadcastService, Depends(get_broadcasts)]) -> MediaStore:
    if broadcasts.media is None:
        raise _unavailable("the broadcast media store is not available")
    return broadcasts.media


def get_media_url_allow(services: ServicesDep) -> tuple[str, ...]:
    """URL prefixes (VH_MEDIA_URL_ALLOW) an audio `media.url` may point at, besides the hub's own copy."""
    return parse_allow_list(services.settings.broadcasts.media_url_allow)


def get_problems(services: ServicesDep) -> ProblemService:
    return services.problems


def get_rankings(services: ServicesDep) -> RankingService:
    return services.rankings


def get_lights(services: ServicesDep) -> LightService:
    return services.lights


RegistryDep = Annotated[Registry, Depends(get_registry)]
SnapshotsDep = Annotated[SnapshotService, Depends(get_snapshots)]
BroadcastsDep = Annotated[BroadcastService, Depends(get_broadcasts)]
MediaDep = Annotated[MediaStore, Depends(get_media)]
MediaUrlAllowDep = Annotated[tuple[str, ...], Depends(get_media_url_allow)]
ProblemsDep = Annotated[ProblemService, Depends(get_problems)]
RankingsDep = Annotated[RankingService, Depends(get_rankings)]
LightsDep = Annotated[LightService, Depends(get_lights)]


def _client_address(request: Request | WebSocket) -> str:
    return request.client.host if request.client else "unknown"


def bearer_token(headers: Headers) -> str:
    """The token of an `Authorization: Bearer <token>` header, or ""."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class AuthFailure(Exception):
    """Why a caller was refused: 401 (no valid token) or 429 (too many failures from its address)."""

    def __init__(self, status_code: int, detail: str, headers: dict[str, str]) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = headers

    def http(self) -> HTTPException:
        return HTTPException(self.status_code, self.detail, headers=self.headers)


def check_token(token: str, client: str, services: Services) -> Principal:
    """The token's principal. The token is checked first: a valid token is never blocked;
    only failures are counted and, past the limit, answered 429 instead of 401."""
    principal = services.tokens.authenticate(token) if token else None
    if principal is not None:
        return principal
    now = services.clock.monotonic()
    limiter = services.auth_failures
    wait = limiter.blocked(client, now)
    limiter.record_failure(client, now)
    if wait is not None:
        raise AuthFailure(status.HTTP_429_TOO_MANY_REQUESTS, "too many failed authentications",
                          {"Retry-After": str(int(wait) + 1)})
    raise AuthFailure(status.HTTP_401_UNAUTHORIZED, "missing or invalid bearer token",
                      {"WWW-Authenticate": "Bearer"})


def authenticate(request: Request, services: Services) -> Principal:
    """The caller's principal from its bearer token (HTTPException 401/429 otherwise)."""
    try:
        return check_token(bearer_token(request.headers), _client_address(request), services)
    except AuthFailure as exc:
        raise exc.http() from None


# Declares the bearer scheme in /openapi.json; authentication itself is done below so that
# failures are counted and rate-limited per client address.
bearer_scheme = HTTPBearer(auto_error=False, description="An API token: `villagehub token create`")


def require(role: Role) -> Callable[..., Principal]:
    """Dependency: the caller's principal, which must hold at least `role` (401/403/429 otherwise)."""

    def dependency(
        request: Request, _: HTTPAuthorizationCredentials | None = Security(bearer_scheme)
    ) -> Principal:
        services = get_services(request)
        principal = authenticate(request, services)
        if not principal.allows(role):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this needs the {role} role")
        return principal

    dependency.__name__ = f"require_{role}"
    dependency.required_role = role  # type: ignore[attr-defined]
    return dependency


require_viewer = require("viewer")
require_operator = require("operator")
require_admin = require("admin")

Viewer = Annotated[Principal, Depends(require_viewer)]
Operator = Annotated[Principal, Depends(require_operator)]
Admin = Annotated[Principal, Depends(require_admin)]


def websocket_token(websocket: WebSocket) -> str:
    """WebSockets authenticate with `?token=` (browsers cannot set headers) or the header."""
    return (websocket.query_params.get("token") or "").strip() or bearer_token(websocket.headers)


def websocket_principal(websocket: WebSocket, services: Services) -> Principal | None:
    """The stream's principal, or None; failures count in the same limiter as HTTP ones."""
    try:
        return check_token(websocket_token(websocket), _client_address(websocket), services)
    except AuthFailure:
        return None
