"""Who am I, API tokens (admin) and the audit log of operator actions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from hub.api.deps import Admin, ServicesDep, Viewer
from hub.auth import Role


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    role: Role


class TokenAuditEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: str = Field(min_length=1, max_length=64, pattern=r"^[a-z_.]+$")
    target: str | None = Field(None, max_length=128)
    detail: str = Field("", max_length=2000)


def build_router() -> APIRouter:
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

    @router.post("/audit", status_code=201, summary="Record a wall-screen action in the audit log")
    def record(body: TokenAuditEntry, services: ServicesDep, who: Viewer) -> dict[str, str]:
        services.tokens.audit(who, "ui." + body.action, body.target, body.detail)
        return {"status": "recorded"}

    return router
