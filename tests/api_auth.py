"""The real `hub.api.deps` authentication for router-level tests.

A router built on its own (no full hub) gets `app.state.services` with just what
`hub.api.deps` reads: a real `TokenStore` (real tokens, SHA-256 at rest), the failure
limiter and a clock. Tests pass `require_viewer` / `require_operator` / `require_admin`
as the router's role dependencies, so their 401/403 checks exercise the hub's own code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI

from hub.auth import ROLES, FailureLimiter, TokenStore
from hub.clock import Clock, ManualClock, SystemClock


@dataclass
class AuthServices:
    """The part of `hub.services.Services` that `hub.api.deps` uses."""

    tokens: TokenStore
    clock: Clock = field(default_factory=ManualClock)
    auth_failures: FailureLimiter = field(default_factory=FailureLimiter)


def install_real_auth(app: FastAPI, data_dir: Path) -> tuple[TokenStore, dict[str, str]]:
    """A TokenStore under `data_dir` with one token per role (named `<role>-user`), wired into `app`."""
    store = TokenStore(data_dir / "auth.db", clock=SystemClock())
    app.state.services = AuthServices(store)
    tokens: dict[str, str] = {role: store.create(f"{role}-user", role) for role in ROLES}
    return store, tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
