"""Request and response models of the registry routes (hub/api/routes/registry.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from hub.registry.schema import Lat, Lon, Name, OptId, Quiet, Tags, Url


class GroupOut(BaseModel):
    id: str
    village: str
    name: str
    cameras: int = 0
    speakers: int = 0
    lights: int = 0


class VillageOut(BaseModel):
    id: str
    name: str
    lat: float | None
    lon: float | None
    quiet_hours: str | None = Field(description="HH:MM-HH:MM local time; null means the hub default")
    cameras: int = 0
    speakers: int = 0
    lights: int = 0
    groups: list[GroupOut] = Field(default_factory=list)


class VillageBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    lat: Lat = None
    lon: Lon = None
    quiet_hours: Quiet = None


class GroupBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    village: Annotated[str, Field(min_length=1, max_length=64)]
    name: Name


class DeviceBody(BaseModel):
    """A registration. With a `group` and no `village`, the group's village is used."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["camera", "speaker", "light"]
    name: Name
    village: OptId = None
    group: OptId = None
    lat: Lat = None
    lon: Lon = None
    tags: Tags = Field(default_factory=dict)
    stream_url: Url = None


class DeviceOut(BaseModel):
    id: str
    kind: str
    name: str
    village: str | None
    group: str | None
    lat: float | None
    lon: float | None
    tags: dict[str, str]
    stream_url: str | None
    registered: bool


class ImportOut(BaseModel):
    villages_added: int
    villages_updated: int
    villages_removed: int
    groups_added: int
    groups_updated: int
    groups_removed: int
    devices_added: int
    devices_updated: int
    devices_unchanged: int
    devices_removed: int
    seconds: float
