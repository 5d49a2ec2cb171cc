"""Request models and field types of the problem ledger routes (hub/api/routes/problems.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from hub.topics import ID_PATTERN

StateName = Literal["open", "assigned", "fixed", "verified", "closed", "rejected"]
Category = Literal["environment", "device_fault", "safety", "sanitation", "other"]
StageName = Literal["before", "after"]
IdStr = Annotated[str, Field(pattern=ID_PATTERN, max_length=64)]
Ts = Annotated[float, Field(ge=946_684_800, le=7_258_118_400, description="Unix seconds")]


class ProblemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    village: IdStr | None = None
    group: IdStr | None = None
    category: Category
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=4000)
    device_id: IdStr | None = None
    alert_key: str | None = Field(None, min_length=1, max_length=200)
    owner: str | None = Field(None, max_length=64)
    deadline: Ts | None = None
    before_from_camera: IdStr | None = None


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: StateName
    owner: str | None = Field(None, min_length=1, max_length=64)
    deadline: Ts | None = None
    note: str = Field("", max_length=1000)


class PhotoFromCamera(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stage: StageName = "after"
    from_camera: IdStr
    fresh: bool = False
