"""Each fault scenario produces on the wire what it claims (recorded by a plain client)."""

from __future__ import annotations

import itertools
import json
import time

import cv2
import numpy as np
import pytest

from device_sim import DeviceSpec, parse_scenario
from tests.component.test_sim_support import Msg, recording, running_fleet
from tests.servers import MosquittoServer

pytestmark = pytest.mark.component
NOON = 1_764_388_800.0  # a scene at 12:00 local time, so a dark picture is the fault, not the night


def image_metrics(jpeg: bytes) -> dict[str, float]:
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert img is not None, "not a decodable JPEG"
    body = img[img.shape[0] // 10 :]  # below the timestamp overlay
    return {"brightness": float(body.mean()), "sharpness": float(cv2.Laplacian(body, cv2.CV_64F).var()),
            "contrast": float(body.std())}


def snapshots(msgs: list[Msg]) -> list[dict[str, float]]:
    return [image_metrics(m.payload) for m in msgs]


def test_dark_blurred_and_covered_cameras_send_pictures_that_measure_so(mosquitto: MosquittoServer) -> None:
    devs = [DeviceSpec(f"c-pic-{name}", "camera") for name in ("ok", "dark", "blurred", "covered")]
    scenario = parse_scenario(json.dumps({"faults": [
        {"fault": "dark", "devices": ["c-pic-dark"]},
        {"fault": "blurred", "devices": ["c-pic-blurred"]},
        {"fault": "covered", "devices": ["c-pic-covered"]},
    ]}))
    with recording(mosquitto.port) as rec, running_fleet(mosquitto.url, devs, scenario=scenario,
                                                         scene_start=NOON, snapshot_interval_s=0.25):
        got = {d.id: snapshots(rec.wait(lambda g: len(g) >= 2, device=d.id, channel="snapshot")[-1:])[0]
               for d in devs}
        tamper = rec.wait(lambda g: len(g) >= 1, device="c-pic-covered", channel="event")
    ok = got["c-pic-ok"]
    assert ok["brightness"] > 80 and ok["sharpness"] > 150
    assert got["c-pic-dark"]["brightness"] < 15
    assert got["c-pic-blurred"]["sharpness"] < ok["sharpness"] / 10
    assert got["c-pic-covered"]["contrast"] < 5 and got["c-pic-covered"]["brightness"] < 60
    assert any(m.json()["type"] == "tamper" for m in tamper)


def test_frozen_camera_sends_the_same_bytes_and_moved_camera_a_shifted_scene(mosquitto: MosquittoServer) -> None:
    frozen, moved = DeviceSpec("c-frozen", "camera"), DeviceSpec("c-moved", "camera")
    with recording(mosquitto.port) as rec, running_fleet(mosquitto.url, [frozen, moved], scene_start=NOON,
                                                         time_scale=60, snapshot_interval_s=0.25) as fleet:
        before = rec.wait(lambda g: len(g) >= 1, device=moved.id, channel="snapshot")[-1].payload
        rec.wait(lambda g: len(g) >= 1, device=frozen.id, channel="snapshot")
        fleet.fault(frozen.id, "frozen")
        fleet.fault(moved.id, "moved", px=80)
        n = len(rec.of(frozen.id, "snapshot"))
        pics = rec.wait(lambda g: len(g) >= n + 3, device=frozen.id, channel="snapshot")
        after = rec.wait(lambda g: len(g) >= 4, device=moved.id, channel="snapshot")[-1].payload
        events = rec.wait(lambda g: any(m.json()["type"] == "tamper" for m in g), device=moved.id, channel="event")
    assert len({m.payload for m in pics[n:]}) == 1  # frozen: byte for byte
    a, b = (np.asarray(cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_GRAYSCALE), float)
            for j in (before, after))
    assert np.abs(a - b)[a.shape[0] // 10 :].mean() > 15
    assert events[-1].json()["detail"] == {"reason": "moved"}


def test_dropped_heartbeats_leave_gaps_in_seq(mosquitto: MosquittoServer) -> None:
    dev = DeviceSpec("s-drop", "speaker")
    scenario = parse_scenario('[{"fault": "drop_heartbeats", "devices": ["s-drop"], "params": {"every": 2}}]')
    with recording(mosquitto.port) as rec, running_fleet(mosquitto.url, [dev], scenario=scenario,
                                                         heartbeat_interval_s=0.1):
        hbs = rec.wait(lambda g: len(g) >= 4, device=dev.id, channel="heartbeat")
    seqs = [m.json()["seq"] for m in hbs]
    assert all(b - a == 2 for a, b in itertools.pairwise(seqs)), seqs


def test_clock_skew_shifts_the_device_timestamps(mosquitto: MosquittoServer) -> None:
    dev = DeviceSpec("c-skew", "camera")
    scenario = parse_scenario('[{"fault": "clock_skew", "devices": ["c-skew"], "params": {"skew_s": 900}}]')
    with recording(mosquitto.port) as rec, running_fleet(mosquitto.url, [dev], scenario=scenario):
        [hb, *_] = rec.wait(lambda g: len(g) >= 1, device=dev.id, channel="heartbeat")
    assert 850 < hb.json()["ts"] - time.time() < 950


def test_malformed_fault_sends_payloads_that_break_the_contract(mosquitto: MosquittoServer) -> None:
    dev = DeviceSpec("c-malformed", "camera")
    scenario = parse_scenario('[{"fault": "malformed", "devices": ["c-malformed"]}]')
    with recording(mosquitto.port) as rec, running_fleet(mosquitto.url, [dev], scenario=scenario,
                                                         heartbeat_interval_s=0.05, snapshot_interval_s=0.1):
        hbs = rec.wait(lambda g: len(g) >= 6, device=dev.id, channel="heartbeat")
        snaps = rec.wait(lambda g: len(g) >= 1, device=dev.id, channel="snapshot")

    def valid(m: Msg) -> bool:
        try:
            body = json.loads(m.payload)
        except ValueError:
            return False
        return isinstance(body, dict) and body.get("kind") == "camera" and isinstance(body.get("uptime_s"), int)
    assert not any(valid(m) for m in hbs)
    assert any(s.payload[:2] != b"\xff\xd8" for s in snaps)


def test_power_loss_sends_the_event_then_the_will_then_restores(mosquitto: MosquittoServer) -> None:
    dev = DeviceSpec("s-power", "speaker")
    with recording(mosquitto.port) as rec, running_fleet(mosquitto.url, [dev]) as fleet:
        rec.wait(lambda g: len(g) >= 1, device=dev.id, channel="status")
        fleet.fault(dev.id, "power_loss")
        rec.wait(lambda g: g[-1].payload == b"offline", device=dev.id, channel="status")
        loss = [m for m in rec.of(dev.id) if m.channel == "event" or m.channel == "status"]
        assert loss[-2].channel == "event" and loss[-2].json()["type"] == "power_loss"
        assert loss[-1].retain  # the Will: the device never sent DISCONNECT
        fleet.fault(dev.id, "power_loss", on=False)
        ev = rec.wait(lambda g: any(m.json()["type"] == "power_restored" for m in g), device=dev.id, channel="event")
        assert ev[-1].json()["detail"]["outage_s"] >= 0
        hbs = rec.wait(lambda g: [m.json()["seq"] for m in g].count(0) >= 2, device=dev.id, channel="heartbeat")
        rebooted = [m.json() for m in hbs if m.json()["seq"] == 0][-1]
        assert rebooted["uptime_s"] < 5  # it rebooted: seq and uptime start again


def test_speaker_fault_and_amplifier_overheat_show_in_heartbeats_and_events(mosquitto: MosquittoServer) -> None:
    broken, hot = DeviceSpec("s-broken", "speaker"), DeviceSpec("s-hot", "speaker")
    scenario = parse_scenario(json.dumps({"faults": [
        {"fault": "speaker_fault", "devices": ["s-broken"]},
        {"fault": "amp_overheat", "devices": ["s-hot"], "params": {"temp_c": 95}}]}))
    with recording(mosquitto.port) as rec, running_fleet(mosquitto.url, [broken, hot], scenario=scenario):
        hb = rec.wait(lambda g: any(m.json()["state"] == "fault" for m in g), device=broken.id, channel="heartbeat")
        assert hb[-1].json()["state"] == "fault"
        [ev, *_] = rec.wait(lambda g: len(g) >= 1, device=broken.id, channel="event")
        assert ev.json()["type"] == "fault" and ev.json()["detail"]["component"] == "speaker"
        hot_hb = rec.wait(lambda g: len(g) >= 1, device=hot.id, channel="heartbeat")[-1].json()
        assert hot_hb["amp_temp_c"] > 90
        [hot_ev, *_] = rec.wait(lambda g: len(g) >= 1, device=hot.id, channel="event")
        assert hot_ev.json()["detail"]["component"] == "amplifier"


def test_flapping_device_goes_offline_and_online_repeatedly(mosquitto: MosquittoServer) -> None:
    dev = DeviceSpec("c-flap", "camera")
    scenario = parse_scenario('[{"fault": "flapping", "devices": ["c-flap"], "at": 0.2, "params": {"period_s": 0.6}}]')
    with recording(mosquitto.port) as rec, running_fleet(mosquitto.url, [dev], scenario=scenario):
        got = rec.wait(lambda g: [m.payload for m in g].count(b"offline") >= 2
                       and [m.payload for m in g].count(b"online") >= 2, timeout=15,
                       device=dev.id, channel="status")
    assert all(m.retain for m in got)


def test_offline_share_of_the_fleet_on_a_timeline(mosquitto: MosquittoServer) -> None:
    devs = [DeviceSpec(f"c-share-{i}", "camera", "v-share") for i in range(4)]
    scenario = parse_scenario("faults:\n  - {fault: offline_clean, share: 0.5, village: v-share, at: 0.3, duration: 0.5}\n")
    with recording(mosquitto.port) as rec, running_fleet(mosquitto.url, devs, scenario=scenario):

        def statuses() -> dict[str, list[bytes]]:
            return {d.id: [m.payload for m in rec.of(d.id, "status")] for d in devs}

        def cycled(g: object) -> bool:
            return sum(s[:3] == [b"online", b"offline", b"online"] for s in statuses().values()) == 2
        rec.wait(cycled, channel="status")
        got = statuses()
    stayed = [d for d, s in got.items() if s == [b"online"]]
    assert len(stayed) == 2, got
