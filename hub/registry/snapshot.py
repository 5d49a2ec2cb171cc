"""What registry readers see: an immutable snapshot that every write replaces (pure).

Devices noted as unregistered go to the small `fresh` dict (keys never in `base`), so a
burst of new devices copies a small dict, not the whole fleet; it is folded into `base` by
the next other write or when it reaches FRESH_MAX.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

from hub.registry.model import KINDS, Device, Group, Township, Village

FRESH_MAX: Final = 1024


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Villages, groups and devices at one version. Never mutated: every write builds a new one."""

    version: int
    villages: dict[str, Village] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    base: dict[str, Device] = field(default_factory=dict)
    fresh: dict[str, Device] = field(default_factory=dict)

    @property
    def devices(self) -> dict[str, Device]:
        """Every device (a merged copy while there are fresh ones: not for the hot path)."""
        return {**self.base, **self.fresh} if self.fresh else self.base

    def get(self, device_id: str) -> Device | None:
        d = self.base.get(device_id)
        return self.fresh.get(device_id) if d is None and self.fresh else d

    def values(self) -> Iterator[Device]:
        yield from self.base.values()
        yield from self.fresh.values()

    def counts(self) -> dict[tuple[str, bool], int]:
        """(kind, registered) → number of devices."""
        out: dict[tuple[str, bool], int] = {(k, r): 0 for k in KINDS for r in (True, False)}
        for d in self.values():
            out[(d.kind, d.registered)] += 1
        return out

    def township(self, name: str | None = None) -> Township:
        """The registered part as a Township (what `export` writes)."""
        return Township(
            name, list(self.villages.values()), list(self.groups.values()),
            [d for d in self.values() if d.registered],
        )

    # ------------------------------------------------------------ the next snapshot

    def replaced(
        self, villages: dict[str, Village], groups: dict[str, Group], devices: dict[str, Device]
    ) -> Snapshot:
        """Everything new (a reload, an import)."""
        return Snapshot(self.version + 1, villages, groups, devices)

    def changed(
        self,
        *,
        villages: Mapping[str, Village] | None = None,
        groups: Mapping[str, Group] | None = None,
        devices: Mapping[str, Device] | None = None,
        removed: Iterable[str] = (),
    ) -> Snapshot:
        """These records added or replaced, `removed` devices gone; fresh devices folded in
        when devices change."""
        new_devices, fresh = self.base, self.fresh
        if devices or removed:
            new_devices, fresh = {**self.base, **self.fresh}, {}
            new_devices.update(devices or {})
            for device_id in removed:
                new_devices.pop(device_id, None)
        return Snapshot(
            self.version + 1,
            {**self.villages, **villages} if villages else self.villages,
            {**self.groups, **groups} if groups else self.groups,
            new_devices,
            fresh,
        )

    def with_fresh(self, device: Device) -> Snapshot:
        """A newly noted unregistered device; the fresh dict folds into the base at FRESH_MAX."""
        fresh = {**self.fresh, device.id: device}
        if len(fresh) >= FRESH_MAX:
            return Snapshot(self.version + 1, self.villages, self.groups, {**self.base, **fresh})
        return Snapshot(self.version + 1, self.villages, self.groups, self.base, fresh)

    def without_group(self, group_id: str) -> Snapshot:
        groups = {k: g for k, g in self.groups.items() if k != group_id}
        return Snapshot(self.version + 1, self.villages, groups, self.base, self.fresh)

    def without_village(self, village_id: str) -> Snapshot:
        villages = {k: v for k, v in self.villages.items() if k != village_id}
        return Snapshot(self.version + 1, villages, self.groups, self.base, self.fresh)
