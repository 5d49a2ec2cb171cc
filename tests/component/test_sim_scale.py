"""Many simulated devices in one process, each with its own MQTT connection, one network thread."""

from __future__ import annotations

import pytest

from bench.sim_scale import run

pytestmark = pytest.mark.component


def test_two_hundred_devices_connect_and_heartbeat_from_one_network_thread() -> None:
    r = run(devices=200, heartbeat_interval=0.5, hold=2.0, connect_timeout=20, broker=None,
            snapshot_interval=0.0, resolution=(160, 90))
    assert r["all_connected"] and r["devices_heard"] == 200
    assert r["heartbeats_per_s"] >= 0.8 * r["heartbeats_expected_per_s"]
    assert r["seq_gaps"] == 0
    assert r["sim_threads"] <= 12  # not one per device


@pytest.mark.slow
def test_five_thousand_devices_connect_and_heartbeat_in_one_process() -> None:
    r = run(devices=5000, heartbeat_interval=10.0, hold=20.0, connect_timeout=120, broker=None,
            snapshot_interval=0.0, resolution=(320, 180))
    assert r["all_connected"], r
    assert r["connect_s"] < 60
    assert r["devices_heard"] == 5000
    assert r["heartbeats_per_s"] >= 0.9 * r["heartbeats_expected_per_s"]
    assert r["seq_gaps"] == 0
    assert r["sim_threads"] <= 12
