"""Request and response models of the street-light routes (hub/api/routes/lights.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from hub.api.schemas.common import Strict, TargetsIn
from hub.lights.schedule import FixedSchedule, Schedule, SunSchedule, parse_hhmm

Level = Annotated[int, Field(ge=0, le=100, strict=True)]
OnLevel = Annotated[int, Field(ge=1, le=100, strict=True)]
Offset = Annotated[int, Field(ge=-180, le=180, strict=True, description="minutes")]


class SunScheduleIn(Strict):
    mode: Literal["sun"]
    on_offset_min: Offset = 0
    off_offset_min: Offset = 0
    level: OnLevel = 100


class FixedScheduleIn(Strict):
    mode: Literal["fixed"]
    on: str = Field(examples=["18:30"], description="HH:MM in the hub's time zone (VH_TZ)")
    off: str = Field(examples=["05:30"])
    level: OnLevel = 100

    @field_validator("on", "off")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        parse_hhmm(v)
        return v


ScheduleIn = Annotated[SunScheduleIn | FixedScheduleIn, Field(discriminator="mode")]


class CommandIn(Strict):
    targets: TargetsIn
    action: Literal["on", "off", "dim", "set_schedule"]
    level: Level | None = None
    schedule: ScheduleIn | None = None

    @model_validator(mode="after")
    def _fits_action(self) -> CommandIn:
        if self.action == "dim" and self.level is None:
            raise ValueError("level: required for dim (0-100)")
        if self.action == "on" and self.level == 0:
            raise ValueError("level: must be 1-100 for on (use off or dim 0)")
        if self.action in ("off", "set_schedule") and self.level is not None:
            raise ValueError(f"level: not used with {self.action}")
        if self.action == "set_schedule" and self.schedule is None:
            raise ValueError("schedule: required for set_schedule")
        if self.action != "set_schedule" and self.schedule is not None:
            raise ValueError(f"schedule: not used with {self.action}")
        return self

    def to_schedule(self) -> Schedule | None:
        s = self.schedule
        if s is None:
            return None
        if isinstance(s, SunScheduleIn):
            return SunSchedule(s.on_offset_min, s.off_offset_min, s.level)
        return FixedSchedule(parse_hhmm(s.on), parse_hhmm(s.off), s.level)


class CommandRef(BaseModel):
    device: str
    command_id: str


class CommandCreated(BaseModel):
    id: str
    commands: list[CommandRef]


class DeliveryOut(BaseModel):
    device: str
    command_id: str
    state: Literal["pending", "sent", "received", "done", "failed", "rejected", "expired", "offline"]
    reason: str | None
    updated_at: float


class BatchOut(BaseModel):
    id: str
    action: str
    created_at: float
    by: str
    level: int | None = None
    schedule: dict[str, Any] | None = None
    targets: dict[str, Any]
    deliveries: list[DeliveryOut]


class LightItem(BaseModel):
    id: str
    name: str
    village: str | None
    group: str | None
    lat: float | None
    lon: float | None
    status: Literal["online", "offline", "unknown"]
    on: bool | None
    level: int | None
    battery_pct: float | None
    solar: bool | None
    fault: str | None
    power_w: float | None
    last_seen: float | None


class LightList(BaseModel):
    items: list[LightItem]
    total: int


class SunOut(BaseModel):
    date: str
    sunrise: str | None
    sunset: str | None
    lat: float
    lon: float
    tz: str
