"""What the registry refuses: a write checked against the current snapshot (pure).

Each function returns messages that name the field (`group: unknown group 'x'`); an empty
list means the write is consistent.
"""

from __future__ import annotations

import dataclasses

from hub.registry import township_file
from hub.registry.model import Device, Group
from hub.registry.snapshot import Snapshot


def device_errors(s: Snapshot, d: Device) -> tuple[Device, list[str]]:
    """The device as it will be stored (a group without a village gives the group's village)
    and what is wrong with it."""
    errors = township_file.device_errors(d)
    if d.group is not None:
        group = s.groups.get(d.group)
        if group is None:
            errors.append(f"group: unknown group {d.group!r}")
        elif d.village is None:
            d = dataclasses.replace(d, village=group.village)
        elif d.village != group.village:
            errors.append(f"group: group {d.group!r} belongs to village {group.village!r}, "
                          f"not {d.village!r}")
    if d.village is not None and d.village not in s.villages:
        errors.append(f"village: unknown village {d.village!r}")
    return d, errors


def group_errors(s: Snapshot, group: Group) -> list[str]:
    """A group needs a known village; it may not move while devices still belong to it."""
    errors = township_file.group_errors(group)
    if not errors and group.village not in s.villages:
        errors.append(f"village: unknown village {group.village!r}")
    old = s.groups.get(group.id)
    if not errors and old is not None and old.village != group.village:
        moved = [d.id for d in s.values() if d.group == group.id]
        if moved:
            errors.append(
                f"village: group {group.id!r} still has devices in village {old.village!r} "
                f"(e.g. {moved[0]!r}); move them first"
            )
    return errors


def group_delete_errors(s: Snapshot, group_id: str) -> list[str]:
    """Only an empty group is removed."""
    members = [d.id for d in s.values() if d.group == group_id]
    if members:
        return [f"group: {group_id!r} still has {len(members)} device(s), e.g. "
                f"{members[0]!r}; move or remove them first"]
    return []


def village_delete_errors(s: Snapshot, village_id: str) -> list[str]:
    """Only a village without groups or devices is removed."""
    used = [g.id for g in s.groups.values() if g.village == village_id]
    used += [d.id for d in s.values() if d.village == village_id]
    if used:
        return [f"village: {village_id!r} still has {len(used)} group(s) or "
                f"device(s), e.g. {used[0]!r}; move or remove them first"]
    return []
