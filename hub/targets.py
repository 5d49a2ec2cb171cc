"""Who a command is for: everything, villages, village groups (村民组) or single devices.
One definition for broadcasts (loudspeakers) and street lights (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class Addressed(Protocol):
    """A device as targets see it (a registry `Device`, a broadcast `SpeakerRef`)."""

    @property
    def id(self) -> str: ...

    @property
    def village(self) -> str | None: ...

    @property
    def group(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Targets:
    all: bool = False
    villages: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()

    def matches(self, d: Addressed) -> bool:
        return (
            self.all
            or (d.village is not None and d.village in self.villages)
            or (d.group is not None and d.group in self.groups)
            or d.id in self.devices
        )

    def wire(self) -> dict[str, Any]:
        """As a JSON object (lists, not tuples)."""
        return {"all": self.all, "villages": list(self.villages), "groups": list(self.groups),
                "devices": list(self.devices)}
