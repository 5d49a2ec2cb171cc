"""Device-side payloads are what PROTOCOL.md §2–6 says a device sends."""

from __future__ import annotations

import json

import pytest

from device_sim import payloads

pytestmark = pytest.mark.unit


def test_topics_are_under_the_root_per_device() -> None:
    t = payloads.DeviceTopics("vhub/v1", "cam-1")
    assert (t.status, t.heartbeat, t.snapshot, t.event, t.ack, t.cmd, t.hub_status) == (
        "vhub/v1/dev/cam-1/status", "vhub/v1/dev/cam-1/heartbeat", "vhub/v1/dev/cam-1/snapshot",
        "vhub/v1/dev/cam-1/event", "vhub/v1/dev/cam-1/ack", "vhub/v1/dev/cam-1/cmd", "vhub/v1/hub/status")


def test_ack_has_id_state_ts_and_optional_reason() -> None:
    assert json.loads(payloads.ack("c1", "rejected", 10.0, "busy")) == {
        "id": "c1", "state": "rejected", "ts": 10.0, "reason": "busy"}
    assert "reason" not in json.loads(payloads.ack("c1", "done", 10.0))
    with pytest.raises(ValueError):
        payloads.ack("c1", "finished", 10.0)


def test_event_has_type_ts_and_detail_object() -> None:
    assert json.loads(payloads.event("power_loss", 5.5, {"mains": False})) == {
        "type": "power_loss", "ts": 5.5, "detail": {"mains": False}}


def test_malformed_heartbeats_break_the_contract_in_the_named_ways() -> None:
    bad = payloads.malformed_heartbeats("camera", 1.0, 3)
    decoded = []
    for b in bad:
        try:
            decoded.append(json.loads(b))
        except ValueError:
            decoded.append(None)
    assert None in decoded  # not JSON at all
    assert any(isinstance(d, list) for d in decoded)  # not an object
    assert any(isinstance(d, dict) and "kind" not in d for d in decoded)
    assert any(isinstance(d, dict) and d.get("kind") == "toaster" for d in decoded)
    assert any(isinstance(d, dict) and d.get("kind") == "camera" and isinstance(d.get("uptime_s"), str)
               for d in decoded)
