"""EventBus: events published without a time take it from the injected clock."""

from __future__ import annotations

import asyncio

import pytest

from hub.clock import ManualClock
from hub.eventbus import Event, EventBus

pytestmark = pytest.mark.unit


def test_an_event_without_a_time_is_stamped_by_the_injected_clock() -> None:
    clock = ManualClock(start=1_800_000_000.0)
    bus = EventBus(clock=clock)

    async def run() -> list[Event]:
        async with bus.subscribe() as q:
            bus.publish("health", {"n": 1})
            clock.advance(42.5)
            bus.publish("health", {"n": 2})
            bus.publish("alert", {"n": 3}, 1_700_000_000.0)  # an explicit time wins
            bus.publish("alert", {"n": 4}, 0.0)
            return [q.get_nowait() for _ in range(4)]

    events = asyncio.run(run())
    assert [e["ts"] for e in events] == [1_800_000_000.0, 1_800_000_042.5, 1_700_000_000.0, 0.0]
    assert [e["data"]["n"] for e in events] == [1, 2, 3, 4]
