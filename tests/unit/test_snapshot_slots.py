"""Latest-wins slots: one waiting item per camera, bounded bytes, one consumer per camera."""

from __future__ import annotations

import pytest

from hub.snapshots.slots import LatestWinsSlots, Put

pytestmark = pytest.mark.unit


def slots(max_bytes: int = 100) -> LatestWinsSlots[bytes]:
    return LatestWinsSlots(max_bytes, len)


def test_newer_item_replaces_the_waiting_one() -> None:
    s = slots()
    assert s.put("cam1", b"a") == (Put.QUEUED, None)
    assert s.put("cam1", b"bb") == (Put.REPLACED, b"a")
    assert (s.waiting, s.waiting_bytes) == (1, 2)
    assert s.take() == ("cam1", b"bb")


def test_byte_bound_refuses_what_does_not_fit() -> None:
    s = slots(10)
    s.put("cam1", b"x" * 6)
    assert s.put("cam2", b"y" * 6) == (Put.OVERLOADED, None)
    assert s.put("cam1", b"z" * 10)[0] is Put.REPLACED  # replacing frees the old bytes first


def test_a_busy_camera_is_not_handed_out_twice() -> None:
    s = slots()
    s.put("cam1", b"1")
    s.put("cam2", b"2")
    assert s.take() == ("cam1", b"1")
    s.put("cam1", b"3")  # arrives while cam1 is being handled
    assert s.take() == ("cam2", b"2")
    s.close()
    assert s.take() is None  # cam1 was not ready: it is busy
    s.reopen()
    s.done("cam1")
    assert s.take() == ("cam1", b"3")


def test_merge_sees_the_replaced_item() -> None:
    s = slots()
    seen: list[tuple[bytes, bytes]] = []
    s.put("cam1", b"old")
    s.put("cam1", b"new", lambda new, old: seen.append((new, old)))
    assert seen == [(b"new", b"old")]


def test_drain_returns_what_still_waits() -> None:
    s = slots()
    s.put("cam1", b"a")
    s.put("cam2", b"b")
    assert sorted(s.drain()) == [("cam1", b"a"), ("cam2", b"b")]
    assert s.waiting == 0 and s.wait_idle(0.1)
