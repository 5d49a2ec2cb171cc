"""Presence: retained status plus heartbeat timeout (2.5 × interval_s), injected time."""

import pytest

from hub.devices.presence import PresenceTracker

pytestmark = pytest.mark.unit


def test_device_never_heard_is_unknown() -> None:
    assert PresenceTracker().status("cam-001") == "unknown"


def test_will_offline_turns_device_offline_at_once() -> None:
    p = PresenceTracker()
    p.on_status("cam-001", "online", 0)
    t = p.on_status("cam-001", "offline", 1)
    assert t is not None and (t.status, t.reason, t.ts) == ("offline", "will", 1)


def test_silent_device_goes_offline_after_2_5_intervals() -> None:
    p = PresenceTracker()
    assert p.on_heartbeat("cam-001", 100.0, interval_s=10) is not None
    assert p.sweep(124.9) == []
    [t] = p.sweep(125.0)
    assert (t.device_id, t.status, t.reason) == ("cam-001", "offline", "timeout")
    assert p.sweep(200) == []


def test_heartbeat_brings_offline_device_back_online() -> None:
    p = PresenceTracker()
    p.on_status("spk-1", "offline", 0)
    t = p.on_heartbeat("spk-1", 5)
    assert t is not None and (t.status, t.reason) == ("online", "heartbeat")


def test_repeated_heartbeats_make_no_transition_and_push_the_deadline() -> None:
    p = PresenceTracker()
    p.on_heartbeat("d", 0, 30)
    assert p.on_heartbeat("d", 60, 30) is None
    assert p.sweep(130) == []
    assert len(p.sweep(135)) == 1


def test_online_status_without_heartbeat_times_out_on_default_interval() -> None:
    p = PresenceTracker(default_interval_s=30)
    p.on_status("d", "online", 0)
    assert p.sweep(74) == [] and len(p.sweep(75)) == 1


def test_bad_status_payload_raises_value_error() -> None:
    with pytest.raises(ValueError):
        PresenceTracker().on_status("d", "maybe", 0)
