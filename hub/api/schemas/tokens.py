"""Request models of the token and audit routes (hub/api/routes/tokens.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from hub.roles import Role


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    role: Role


class TokenAuditEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: str = Field(min_length=1, max_length=64, pattern=r"^[a-z_.]+$")
    target: str | None = Field(None, max_length=128)
    detail: str = Field("", max_length=2000)
