"""Request-model pieces shared by the resources: strict models, ids, targets."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.targets import Targets
from hub.topics import ID_PATTERN

IdStr = Annotated[str, Field(pattern=ID_PATTERN, max_length=64)]


class Strict(BaseModel):
    """Unknown fields are refused (422 naming them), not ignored."""

    model_config = ConfigDict(extra="forbid")


class TargetsIn(Strict):
    """Whom a broadcast or a street-light command is for (PROTOCOL §7 `targets`)."""

    all: bool = False
    villages: list[IdStr] = Field(default_factory=list, max_length=1000)
    groups: list[IdStr] = Field(default_factory=list, max_length=5000)
    devices: list[IdStr] = Field(default_factory=list, max_length=100_000)

    @model_validator(mode="after")
    def _some_target(self) -> TargetsIn:
        if not (self.all or self.villages or self.groups or self.devices):
            raise ValueError("name at least one target: all, villages, groups or devices")
        return self

    def to_targets(self) -> Targets:
        return Targets(self.all, tuple(self.villages), tuple(self.groups), tuple(self.devices))
