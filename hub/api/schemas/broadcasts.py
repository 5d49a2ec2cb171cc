"""Request and response models of the broadcast and media routes (PROTOCOL §7). Strict: extra="forbid"."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, HttpUrl, field_validator

from hub.api.schemas.common import Strict, TargetsIn
from hub.broadcasts.model import BroadcastSpec
from hub.broadcasts.schedule import ScheduleError, parse_rule, zone_of


class TtsMedia(Strict):
    type: Literal["tts"]
    text: str = Field(min_length=1, max_length=2000)
    lang: str = Field("zh", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    render: Literal["speaker", "hub"] = Field(
        "speaker", description="`hub`: synthesise on the hub with espeak-ng and send audio")


class AudioMedia(Strict):
    type: Literal["audio"]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="of a file uploaded to /api/v1/media")
    url: HttpUrl | None = None
    duration_s: float | None = Field(None, gt=0, le=3600)


Media = Annotated[TtsMedia | AudioMedia, Field(discriminator="type")]


class ScheduleIn(Strict):
    start: str | None = Field(None, description="ISO 8601; absent means now",
                              examples=["2026-12-01T07:30:00+08:00"])
    rrule: str | None = Field(None, max_length=500, examples=["FREQ=DAILY;COUNT=7"])
    tz: str | None = Field(None, description="IANA zone the rrule is evaluated in")

    @field_validator("start")
    @classmethod
    def _start(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                year = datetime.fromisoformat(v).year
            except ValueError:
                raise ValueError("must be an ISO 8601 date-time, e.g. 2026-12-01T07:30:00+08:00") from None
            if not 2000 <= year <= 2200:
                raise ValueError("must be a date-time between the years 2000 and 2200")
        return v

    @field_validator("tz")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                zone_of(v)
            except ScheduleError as exc:
                raise ValueError(str(exc)) from None
        return v

    @field_validator("rrule")
    @classmethod
    def _rrule(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            parse_rule(v, datetime(2026, 1, 1, tzinfo=UTC))
        except ScheduleError as exc:
            raise ValueError(str(exc)) from None
        return v


class BroadcastIn(Strict):
    title: str = Field(min_length=1, max_length=200)
    media: Media
    targets: TargetsIn
    priority: int = Field(3, ge=0, le=9, description="8 and 9 are emergencies (admin only)")
    volume: int = Field(70, ge=0, le=100)
    repeat: int = Field(1, ge=1, le=20)
    schedule: ScheduleIn | None = None
    quiet_hours: Literal["postpone", "skip"] = Field(
        "postpone", description="a routine occurrence inside a village's quiet hours")
    valid_for_s: float = Field(1800, ge=10, le=7 * 86400,
                               description="how long after its due time a play may still start")

    def to_spec(self) -> BroadcastSpec:
        s = self.schedule or ScheduleIn.model_validate({})
        media: dict[str, Any] = self.media.model_dump(mode="json", exclude_none=True)
        return BroadcastSpec(
            title=self.title, media=media, priority=self.priority, volume=self.volume,
            repeat=self.repeat, start=s.start, rrule=s.rrule, tz=s.tz,
            targets=self.targets.to_targets(),
            quiet_hours=self.quiet_hours, valid_for_s=self.valid_for_s,
        )


class QuietHoursIn(Strict):
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["22:00"])
    end: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["06:00"])


class TtsIn(Strict):
    text: str = Field(min_length=1, max_length=2000)
    lang: str = Field("zh", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


# --- responses -------------------------------------------------------------------------

class Created(BaseModel):
    id: str


class BroadcastItem(BaseModel):
    id: str
    title: str
    priority: int
    status: Literal["active", "finished", "cancelled"]
    created_at: float
    created_by: str
    next_at: float | None


class BroadcastList(BaseModel):
    items: list[BroadcastItem]


class DeliveryOut(BaseModel):
    device: str
    village: str
    group: str
    state: str = Field(description="pending|sent|received|playing|done|failed|rejected|"
                                   "preempted|expired|offline")
    command_id: str
    reason: str
    updated_at: float
    due_at: float
    expires_at: float
    send_count: int


class Summary(BaseModel):
    total: int
    done: int
    by_state: dict[str, int]
    by_village: dict[str, dict[str, int]] = Field(default_factory=dict)


class OccurrenceOut(BaseModel):
    id: str
    seq: int
    nominal_at: float
    fired_at: float
    status: Literal["fired", "missed"]
    note: str
    summary: Summary
    deliveries: list[DeliveryOut] = Field(
        description="each speaker's delivery (empty when `deliveries_omitted`)")
    deliveries_omitted: bool = Field(
        description="true for occurrences older than the `detailed` latest ones")


class Conflict(BaseModel):
    device: str
    occurrence_id: str
    waiting_for: str


class AuditOut(BaseModel):
    ts: float
    actor: str
    action: str
    detail: str


class BroadcastOut(BroadcastItem):
    cancelled_at: float | None
    cancelled_by: str | None
    upcoming: list[float]
    media: dict[str, Any]
    targets: dict[str, Any]
    volume: int
    repeat: int
    schedule: dict[str, Any]
    quiet_hours: str
    valid_for_s: float
    occurrences: list[OccurrenceOut]
    conflicts: list[Conflict]
    audit: list[AuditOut]


class CalendarItem(BaseModel):
    broadcast_id: str
    title: str
    priority: int
    at: float
    status: Literal["scheduled", "fired", "missed"]


class Calendar(BaseModel):
    start: float
    end: float
    items: list[CalendarItem]


class MediaOut(BaseModel):
    sha256: str
    content_type: str
    bytes: int
    duration_s: float
    media: dict[str, Any] = Field(description="the `audio` media object to put in a broadcast")
