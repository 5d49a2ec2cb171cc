"""Sun-mode schedules the hub keeps per lamp, and which lamps are due a resend (pure).

A lamp on a sun-mode schedule got absolute `next_on`/`next_off` times; its firmware repeats
them a day later, so they drift from the real dusk and dawn as the days change (minutes a
week). The hub keeps each lamp's sun schedule (`lights.db`) and sends `set_schedule` again
with the new day's times once a day: RESEND_AFTER_S after the `next_off` it last sent has
passed (the morning switch-off, which ends any manual override anyway), so a resend never
cuts short an operator's command of the night. A lamp offline then gets it when it is back
online; a resend that did not end `done` is tried again RETRY_S after it was sent (not one the
lamp `rejected`: that waits for an operator's new schedule).
A fixed-mode schedule needs no resend (the firmware's daily repeat is exact).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from hub.lights.schedule import SunSchedule

RESEND_AFTER_S: Final = 10 * 60.0  # after the last sent next_off
RETRY_S: Final = 10 * 60.0  # after a send that did not end `done`
SYSTEM_BY: Final = "hub:sun-schedule"  # the `by` of the batches the hub sends itself


@dataclass(frozen=True, slots=True)
class SunPlan:
    device: str
    schedule: SunSchedule
    command_id: str  # the latest `set_schedule` sent to the lamp
    next_off: float  # that command's next_off (Unix s)
    sent_at: float
    state: str = "pending"  # that command's delivery state


def schedule_from_wire(wire: dict[str, Any]) -> SunSchedule:
    return SunSchedule(int(wire.get("on_offset_min", 0)), int(wire.get("off_offset_min", 0)),
                       int(wire.get("level", 100)))


def resend_due(plan: SunPlan, now: float, *, online: bool, in_flight: bool) -> bool:
    """Whether the hub sends the lamp its schedule with new times at `now`."""
    if not online or in_flight:
        return False
    if plan.state == "done":
        return now >= plan.next_off + RESEND_AFTER_S
    if plan.state == "rejected":
        return False  # the lamp refuses this schedule: it waits for an operator's new one
    return now >= plan.sent_at + RETRY_S  # failed, expired, never reached: try again


def due_for_resend(plans: Iterable[SunPlan], now: float, *, online: Callable[[str], bool],
                   in_flight: Callable[[str], bool]) -> dict[SunSchedule, list[str]]:
    """The lamps due a resend at `now`, by schedule (one batch each), in device order."""
    out: dict[SunSchedule, list[str]] = {}
    for p in sorted(plans, key=lambda p: p.device):
        if resend_due(p, now, online=online(p.device), in_flight=in_flight(p.command_id)):
            out.setdefault(p.schedule, []).append(p.device)
    return out
