"""Response models of the camera snapshot routes (hub/api/routes/snapshots.py)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class HistoryEntry(BaseModel):
    id: int
    ts: float
    health: str
    bytes: int
    url: str


class HistoryList(BaseModel):
    device: str
    items: list[HistoryEntry]


class CameraHealth(BaseModel):
    device: str
    health: str  # ok | dark | blurred | covered | frozen | moved
    active: list[str]
    stale: bool
    last_snapshot_at: float | None
    last: dict[str, Any]
    thresholds: dict[str, Any]


class SnapshotRequestResult(BaseModel):
    command_id: str
    device: str
    state: str  # sent | answered | rejected | timeout
    expires_at: float
    snapshot: dict[str, Any] | None = None
