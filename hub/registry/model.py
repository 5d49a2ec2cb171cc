"""Registry records: villages, groups (村民组) and devices, as frozen dataclasses.

Identities follow PROTOCOL §1: ids match `hub.topics.is_valid_id`; a group belongs to
one village; a device belongs to at most one village and at most one group, and its
group belongs to its village.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal, get_args

Kind = Literal["camera", "speaker", "light"]
KINDS: Final[tuple[str, ...]] = get_args(Kind)


@dataclass(frozen=True, slots=True)
class Village:
    id: str
    name: str
    lat: float | None = None
    lon: float | None = None
    quiet_hours: str | None = None  # "22:00-06:00" local time; None means the hub default


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    village: str
    name: str


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    kind: Kind
    name: str
    village: str | None = None
    group: str | None = None
    lat: float | None = None
    lon: float | None = None
    tags: dict[str, str] = field(default_factory=dict)
    stream_url: str | None = None
    registered: bool = True


@dataclass(frozen=True, slots=True)
class Township:
    """A whole township as read from a township file: validated, self-consistent records."""

    name: str | None
    villages: list[Village]
    groups: list[Group]
    devices: list[Device]


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import changed. `removed` counts only happen with `replace=True`."""

    villages_added: int = 0
    villages_updated: int = 0
    villages_removed: int = 0
    groups_added: int = 0
    groups_updated: int = 0
    groups_removed: int = 0
    devices_added: int = 0
    devices_updated: int = 0
    devices_unchanged: int = 0
    devices_removed: int = 0
    seconds: float = 0.0
