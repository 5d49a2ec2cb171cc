"""The simulator's network loop runs timers on the injected clock and work handed in from other threads."""

from __future__ import annotations

import threading
import time

import pytest

from device_sim.clock import ManualClock, SceneClock
from device_sim.netloop import NetLoop

pytestmark = pytest.mark.unit


def test_timers_fire_in_order_when_the_manual_clock_reaches_them() -> None:
    clock = ManualClock()
    loop = NetLoop(clock)
    fired: list[str] = []
    done = threading.Event()
    loop.start()
    try:
        def last() -> None:
            fired.append("c")
            done.set()

        def arm() -> None:
            loop.call_later(10, lambda: fired.append("b"))
            loop.call_later(5, lambda: fired.append("a"))
            loop.call_later(20, last)
            loop.call_later(7, lambda: fired.append("cancelled")).cancel()
        loop.call(arm)
        time.sleep(0.3)
        assert fired == []
        clock.advance(12)
        deadline = time.monotonic() + 2
        while fired != ["a", "b"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fired == ["a", "b"]
        clock.advance(10)
        assert done.wait(2) and fired == ["a", "b", "c"]
    finally:
        loop.stop()


def test_call_from_another_thread_returns_the_result_or_raises() -> None:
    loop = NetLoop()
    loop.start()
    try:
        assert loop.call(lambda: threading.current_thread().name) == "device-sim-loop"
        with pytest.raises(ZeroDivisionError):
            loop.call(lambda: 1 / 0)
    finally:
        loop.stop()


def test_scene_clock_runs_faster_than_the_device_clock() -> None:
    base = ManualClock(1000.0)
    scene = SceneClock(base, scale=60, start=0.0)
    base.advance(10)
    assert scene.now() == 600.0
    with pytest.raises(ValueError):
        SceneClock(base, scale=0)
