"""Fleet counts: devices by kind, status and village, from the registry and the live statuses. Pure.

One function for the API overview and the metrics gauges, so both count the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

KINDS = ("camera", "speaker", "light")
STATUSES = ("online", "offline", "unknown")


class CountedDevice(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def village(self) -> str | None: ...


def zero_counts() -> dict[str, int]:
    return {"online": 0, "offline": 0, "unknown": 0, "total": 0}


@dataclass(frozen=True, slots=True)
class FleetCounts:
    """`by_kind[kind][status|"total"]`; `by_village[village][kind][status|"total"]` (villages
    with at least one device of a counted kind)."""

    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    by_village: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)

    def kind(self, kind: str) -> dict[str, int]:
        return self.by_kind.get(kind) or zero_counts()

    def summary(self) -> dict[str, int]:
        """`cameras_online`, `cameras_total`, … for every kind (the 24 h history's counts)."""
        out: dict[str, int] = {}
        for kind in KINDS:
            c = self.kind(kind)
            out[f"{kind}s_online"] = c["online"]
            out[f"{kind}s_total"] = c["total"]
        return out


def count_fleet(
    devices: Iterable[CountedDevice], statuses: Mapping[str, tuple[str, float | None]],
) -> FleetCounts:
    """Registered devices counted by kind and status (`unknown` when never heard of), and by village."""
    by_kind = {k: zero_counts() for k in KINDS}
    by_village: dict[str, dict[str, dict[str, int]]] = {}
    for dev in devices:
        counts = by_kind.get(dev.kind)
        if counts is None:
            continue
        seen = statuses.get(dev.id)
        status = seen[0] if seen is not None else "unknown"
        counts[status] += 1
        counts["total"] += 1
        if dev.village:
            village = by_village.get(dev.village)
            if village is None:
                village = by_village[dev.village] = {k: zero_counts() for k in KINDS}
            village[dev.kind][status] += 1
            village[dev.kind]["total"] += 1
    return FleetCounts(by_kind, by_village)
