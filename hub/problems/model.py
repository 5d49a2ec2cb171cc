"""Plain values of the problem ledger, as the store, the service and the API pass them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

State = Literal["open", "assigned", "fixed", "verified", "closed", "rejected"]
STATES: Final[tuple[str, ...]] = ("open", "assigned", "fixed", "verified", "closed", "rejected")
# A problem in one of these states is still waiting for someone: it can be overdue.
PENDING_STATES: Final[frozenset[str]] = frozenset({"open", "assigned"})
# The work is done (fixed and checked): what "closed on time" looks at.
DONE_STATES: Final[frozenset[str]] = frozenset({"verified", "closed"})

CATEGORIES: Final[dict[str, str]] = {
    "environment": "人居环境",
    "device_fault": "设备故障",
    "safety": "安全隐患",
    "sanitation": "环境卫生",
    "other": "其他",
}
STATE_ZH: Final[dict[str, str]] = {
    "open": "待交办",
    "assigned": "整改中",
    "fixed": "已整改",
    "verified": "已验收",
    "closed": "已销号",
    "rejected": "已驳回",
}
Stage = Literal["before", "after"]
STAGES: Final[tuple[str, ...]] = ("before", "after")
MAX_PHOTO_BYTES: Final = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Photo:
    id: str
    problem_id: str
    stage: str  # before | after
    source: str  # camera | upload
    device_id: str | None
    taken_at: float
    added_at: float
    added_by: str
    bytes: int

    @property
    def url(self) -> str:
        return f"/api/v1/problems/{self.problem_id}/photos/{self.id}"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "stage": self.stage, "source": self.source, "device_id": self.device_id,
                "taken_at": self.taken_at, "url": self.url}


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    ts: float
    by: str
    from_state: str | None  # None for the creation
    to_state: str
    note: str

    def to_json(self) -> dict[str, Any]:
        return {"ts": self.ts, "by": self.by, "from": self.from_state, "to": self.to_state, "note": self.note}


@dataclass(frozen=True, slots=True)
class Problem:
    id: str
    village: str
    group: str | None
    category: str
    title: str
    description: str
    device_id: str | None
    alert_key: str | None
    owner: str | None
    deadline: float | None
    state: str
    created_at: float
    created_by: str
    updated_at: float
    closed_at: float | None
    photos: tuple[Photo, ...] = field(default=())
    history: tuple[HistoryEntry, ...] = field(default=())

    def is_overdue(self, now: float) -> bool:
        return self.deadline is not None and now > self.deadline and self.state in PENDING_STATES

    def done_at(self) -> float | None:
        """When the work was first verified or closed (None while it is not)."""
        for h in self.history:
            if h.to_state in DONE_STATES:
                return h.ts
        return self.closed_at

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            **self.summary(now),
            "description": self.description, "device_id": self.device_id, "alert_key": self.alert_key,
            "created_by": self.created_by,
            "photos": [p.to_json() for p in self.photos],
            "history": [h.to_json() for h in self.history],
        }

    def summary(self, now: float) -> dict[str, Any]:
        """The short form sent on the event bus (`problem` events)."""
        return {
            "id": self.id, "village": self.village, "group": self.group, "category": self.category,
            "title": self.title, "owner": self.owner, "deadline": self.deadline, "state": self.state,
            "created_at": self.created_at, "updated_at": self.updated_at, "closed_at": self.closed_at,
            "overdue": self.is_overdue(now), "device_id": self.device_id, "alert_key": self.alert_key,
        }


@dataclass(frozen=True, slots=True)
class Filters:
    state: str | None = None
    village: str | None = None
    category: str | None = None
    overdue: bool | None = None


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    kind: str
    village: str | None
    group: str | None


@dataclass(frozen=True, slots=True)
class Places:
    """What the ledger needs from the registry."""

    device: Callable[[str], DeviceInfo | None]
    village_name: Callable[[str], str | None]  # None: no such village
    group_village: Callable[[str], str | None]  # the village of a group; None: no such group
