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


def test_events_from_another_thread_arrive_all_in_order_with_few_loop_wakeups() -> None:
    import threading

    clock = ManualClock(start=1_800_000_000.0)
    bus = EventBus(queue_size=10_000, clock=clock)

    async def run() -> list[Event]:
        bus.bind(asyncio.get_running_loop())
        bus.publish("presence", {"n": -1})  # nobody subscribed yet: dropped, and no wake-up
        assert bus.wakeups == 0
        async with bus.subscribe() as q:
            producer = threading.Thread(target=lambda: [bus.publish("presence", {"n": i}) for i in range(5000)])
            producer.start()
            got = [await asyncio.wait_for(q.get(), 10) for _ in range(5000)]
            producer.join()
            return got

    events = asyncio.run(run())
    assert [e["data"]["n"] for e in events] == list(range(5000))
    assert bus.wakeups < 500  # one per burst the loop had not drained yet, not one per event
