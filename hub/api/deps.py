"""Shared API dependencies, declared once: the services container and role checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, WebSocket, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hub.auth import Principal, Role
from hub.services import Services


def get_services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(get_services)]


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def authenticate(request: Request, services: Services) -> Principal:
    now = services.clock.monotonic()
    client = _client_address(request)
    wait = services.auth_failures.blocked(client, now)
    if wait is not None:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many failed authentications",
                            headers={"Retry-After": str(int(wait) + 1)})
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    principal = services.tokens.authenticate(token.strip()) if scheme.lower() == "bearer" else None
    if principal is None:
        services.auth_failures.record_failure(client, now)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or invalid bearer token",
                            headers={"WWW-Authenticate": "Bearer"})
    return principal


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


def websocket_principal(websocket: WebSocket, services: Services) -> Principal | None:
    """WebSockets authenticate with `?token=` (browsers cannot set headers) or the header."""
    token = websocket.query_params.get("token")
    if not token:
        header = websocket.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            token = ""
    return services.tokens.authenticate(token.strip()) if token else None
