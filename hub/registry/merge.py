"""Importing a township into the registry, decided as a pure function: what the registry
becomes, which rows change, what the report says — or why the result would be inconsistent.

`Registry.import_township` (store.py) only writes the plan in one transaction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from hub.registry.model import Device, Group, ImportReport, Township, Village


@dataclass(frozen=True, slots=True)
class MergePlan:
    # what the registry holds afterwards
    villages: dict[str, Village]
    groups: dict[str, Group]
    devices: dict[str, Device]
    # the rows to write
    upsert_villages: list[Village]
    upsert_groups: list[Group]
    upsert_devices: list[Device]
    delete_villages: list[str]
    delete_groups: list[str]
    delete_devices: list[str]
    report: ImportReport
    errors: list[str]


def plan_import(
    villages: Mapping[str, Village],
    groups: Mapping[str, Group],
    devices: Mapping[str, Device],
    town: Township,
    *,
    replace: bool,
) -> MergePlan:
    """Merge `town` into the current records (or replace them, keeping unregistered devices)."""
    incoming = [d if d.registered else dataclasses.replace(d, registered=True) for d in town.devices]
    new_villages = {} if replace else dict(villages)
    new_groups = {} if replace else dict(groups)
    new_devices = {k: d for k, d in devices.items() if not d.registered} if replace else dict(devices)
    new_villages.update((v.id, v) for v in town.villages)
    new_groups.update((g.id, g) for g in town.groups)
    new_devices.update((d.id, d) for d in incoming)

    up_v = [v for v in town.villages if villages.get(v.id) != v]
    up_g = [g for g in town.groups if groups.get(g.id) != g]
    up_d = [d for d in incoming if devices.get(d.id) != d]
    gone_v = [k for k in villages if k not in new_villages]
    gone_g = [k for k in groups if k not in new_groups]
    gone_d = [k for k in devices if k not in new_devices]

    def was_registered(device_id: str) -> bool:
        old = devices.get(device_id)
        return old is not None and old.registered

    report = ImportReport(
        villages_added=sum(v.id not in villages for v in town.villages),
        villages_updated=sum(v.id in villages for v in up_v),
        villages_removed=len(gone_v),
        groups_added=sum(g.id not in groups for g in town.groups),
        groups_updated=sum(g.id in groups for g in up_g),
        groups_removed=len(gone_g),
        devices_added=sum(not was_registered(d.id) for d in up_d),
        devices_updated=sum(was_registered(d.id) for d in up_d),
        devices_unchanged=len(incoming) - len(up_d),
        devices_removed=len(gone_d),
    )
    return MergePlan(
        new_villages, new_groups, new_devices, up_v, up_g, up_d, gone_v, gone_g, gone_d, report,
        consistency(new_villages, new_groups, new_devices),
    )


def consistency(
    villages: Mapping[str, Village], groups: Mapping[str, Group], devices: Mapping[str, Device]
) -> list[str]:
    """Every reference resolves and every device's group belongs to its village."""
    errors = [
        f"group {g.id!r}: unknown village {g.village!r}" for g in groups.values() if g.village not in villages
    ]
    for d in devices.values():
        if d.village is not None and d.village not in villages:
            errors.append(f"device {d.id!r}: unknown village {d.village!r}")
        if d.group is not None:
            g = groups.get(d.group)
            if g is None:
                errors.append(f"device {d.id!r}: unknown group {d.group!r}")
            elif g.village != d.village:
                errors.append(f"device {d.id!r}: group {d.group!r} belongs to village {g.village!r}, "
                              f"not {d.village!r}")
    return errors
