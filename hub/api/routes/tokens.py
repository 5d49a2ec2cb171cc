"""Who am I, API tokens (admin) and the audit log of operator actions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status

from hub.api.deps import Admin, Operator, ServicesDep, Viewer
from hub.api.schemas.tokens import TokenAuditEntry, TokenCreate
from hub.auth import FailureLimiter

# The wall screen records its confirmation steps (emergency confirm/abort); an operator's
# token may add at most this many entries a minute.
UI_AUDIT_PER_MINUTE = 30


def ui_audit_rate(request: Request) -> FailureLimiter:
    """The app's limiter of wall-screen audit entries per token (made by `create_app`)."""
    return request.app.state.ui_audit_rate  # type: ignore[no-any-return]


def new_ui_audit_rate() -> FailureLimiter:
    return FailureLimiter(limit=UI_AUDIT_PER_MINUTE, window_s=60.0)


UiAuditRate = Annotated[FailureLimiter, Depends(ui_audit_rate)]

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.get("/whoami", summary="The caller's name and role")
def whoami(who: Viewer) -> dict[str, str]:
    return {"name": who.name, "role": who.role}


@router.get("/tokens", summary="API tokens (ids only; a token is shown once, at creation)")
def list_tokens(services: ServicesDep, _: Admin) -> dict[str, Any]:
    return {"items": [{"token_id": t.token_id, "name": t.name, "role": t.role,
                       "created_at": t.created_at, "revoked_at": t.revoked_at}
                      for t in services.tokens.tokens()]}


@router.post("/tokens", status_code=201, summary="Create a token (shown once)")
def create_token(body: TokenCreate, services: ServicesDep, who: Admin) -> dict[str, str]:
    token = services.tokens.create(body.name, body.role)
    services.tokens.audit(who, "token.create", body.name, body.role)
    return {"token": token, "name": body.name, "role": body.role}


@router.post("/tokens/{token_id}/revoke", summary="Revoke a token by its id")
def revoke_token(token_id: str, services: ServicesDep, who: Admin) -> dict[str, str]:
    if not services.tokens.revoke(token_id):
        raise HTTPException(404, f"unknown token {token_id[:16]!r}")
    services.tokens.audit(who, "token.revoke", token_id)
    return {"revoked": token_id}


@router.get("/audit", summary="Audit log of operator actions")
def audit(services: ServicesDep, _: Admin, limit: int = Query(200, ge=1, le=1000)) -> dict[str, Any]:
    return {"items": services.tokens.audit_log(limit)}


@router.post("/audit", status_code=201,
             summary=f"Record a wall-screen action in the audit log (operator; {UI_AUDIT_PER_MINUTE} a minute)",
             responses={429: {"description": "over the per-token rate"}})
def record(body: TokenAuditEntry, services: ServicesDep, who: Operator, rate: UiAuditRate) -> dict[str, str]:
    now = services.clock.monotonic()
    wait = rate.blocked(who.token_id, now)
    if wait is not None:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many audit entries from this token",
                            headers={"Retry-After": str(int(wait) + 1)})
    rate.record_failure(who.token_id, now)
    services.tokens.audit(who, "ui." + body.action, body.target, body.detail)
    return {"status": "recorded"}
