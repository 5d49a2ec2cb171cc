"""What simulated devices publish, recorded by a plain MQTT client, checked against PROTOCOL.md."""

from __future__ import annotations

import time
from typing import Any

import pytest

from device_sim import DeviceSpec
from tests.component.test_sim_support import Msg, recording, running_fleet
from tests.servers import MosquittoServer

pytestmark = pytest.mark.component

CAM, SPK = DeviceSpec("c-contract", "camera", "v01", "g1"), DeviceSpec("s-contract", "speaker", "v01", "g1")
COMMON: dict[str, Any] = {"kind": str, "ts": float, "seq": int, "interval_s": float, "uptime_s": int, "rssi_dbm": int, "fw": str}
CAMERA: dict[str, Any] = {"fps": (int, float), "bitrate_kbps": (int, float), "temp_c": float, "storage_free_pct": float,
          "recording": bool, "stream_url": str}
SPEAKER: dict[str, Any] = {"volume": int, "state": str, "playing": (str, type(None)), "amp_temp_c": float,
           "power_w": (int, float), "mains": bool, "battery_pct": (int, float)}


def check_heartbeat(m: Msg, kind: str) -> dict[str, Any]:
    hb = m.json()
    assert isinstance(hb, dict) and len(m.payload) <= 16 * 1024
    assert not m.retain and m.qos in (0, 1)
    for name, typ in {**COMMON, **(CAMERA if kind == "camera" else SPEAKER)}.items():
        assert isinstance(hb[name], typ), (name, hb[name])
    assert hb["kind"] == kind and hb["seq"] >= 0 and hb["interval_s"] > 0 and hb["uptime_s"] >= 0
    assert len(hb["fw"]) <= 32
    if kind == "camera":
        assert hb["fps"] >= 0 and 0 <= hb["storage_free_pct"] <= 100 and hb["stream_url"].startswith("rtsp://")
    else:
        assert 0 <= hb["volume"] <= 100 and hb["state"] in ("idle", "playing", "fault")
        assert 0 <= hb["battery_pct"] <= 100 and hb["power_w"] >= 0
    return hb


def test_devices_publish_online_retained_then_heartbeats_with_consecutive_seq(mosquitto: MosquittoServer) -> None:
    with recording(mosquitto.port) as rec, running_fleet(mosquitto.url, [CAM, SPK]):
        for dev, kind in ((CAM, "camera"), (SPK, "speaker")):
            [status, *_] = rec.wait(lambda g: len(g) >= 1, device=dev.id, channel="status")
            assert status.payload == b"online" and status.retain and status.qos == 1
            hbs = rec.wait(lambda g: len(g) >= 3, device=dev.id, channel="heartbeat")
            seqs = [check_heartbeat(m, kind)["seq"] for m in hbs]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
            assert hbs[0].json()["interval_s"] == pytest.approx(0.3)
        assert {m.channel for m in rec.of()} <= {"status", "heartbeat", "event", "ack", "snapshot"}


def test_clean_stop_leaves_offline_retained(mosquitto: MosquittoServer) -> None:
    dev = DeviceSpec("c-clean-stop", "camera")
    with recording(mosquitto.port) as rec:
        with running_fleet(mosquitto.url, [dev]):
            rec.wait(lambda g: len(g) >= 1, device=dev.id, channel="status")
        last = rec.wait(lambda g: g[-1].payload == b"offline", device=dev.id, channel="status")[-1]
        assert last.retain and last.qos == 1
    with recording(mosquitto.port) as late:  # a later subscriber gets the retained state
        [m] = late.wait(lambda g: len(g) == 1, device=dev.id, channel="status")
        assert m.payload == b"offline"


@pytest.mark.parametrize("version", [5, 4])
def test_unclean_disconnect_fires_the_will_offline_retained(mosquitto: MosquittoServer, version: int) -> None:
    dev = DeviceSpec(f"s-unclean-{version}", "speaker")
    with recording(mosquitto.port) as rec, running_fleet(mosquitto.url, [dev], mqtt_version=version) as fleet:
        rec.wait(lambda g: len(g) >= 1, device=dev.id, channel="status")
        fleet.fault(dev.id, "offline_unclean")
        will = rec.wait(lambda g: g[-1].payload == b"offline", device=dev.id, channel="status")[-1]
        assert will.retain and will.qos == 1
        fleet.fault(dev.id, "offline_unclean", on=False)
        rec.wait(lambda g: g[-1].payload == b"online", device=dev.id, channel="status")


@pytest.mark.parametrize("version", [5, 4])
def test_snapshots_are_raw_jpeg_with_user_properties_on_mqtt5_only(mosquitto: MosquittoServer, version: int) -> None:
    dev = DeviceSpec(f"c-snap-{version}", "camera")
    with recording(mosquitto.port) as rec, running_fleet(mosquitto.url, [dev], snapshot_interval_s=0.3,
                                                         mqtt_version=version):
        [snap, *_] = rec.wait(lambda g: len(g) >= 1, device=dev.id, channel="snapshot")
        assert snap.payload[:2] == b"\xff\xd8" and not snap.retain and snap.qos in (0, 1)
        if version == 5:
            assert snap.user["trigger"] == "schedule" and abs(float(snap.user["ts"]) - time.time()) < 10
        else:
            assert snap.user == {}


@pytest.mark.parametrize("version", [5, 4])
def test_persistent_session_delivers_a_command_sent_while_offline(mosquitto: MosquittoServer, version: int) -> None:
    dev = DeviceSpec(f"s-session-{version}", "speaker")
    with recording(mosquitto.port) as rec, running_fleet(mosquitto.url, [dev], mqtt_version=version) as fleet:
        rec.wait(lambda g: len(g) >= 1, device=dev.id, channel="status")
        fleet.fault(dev.id, "offline_clean")
        rec.wait(lambda g: g[-1].payload == b"offline", device=dev.id, channel="status")
        now = time.time()
        rec.send(dev.id, {"id": "vol-1", "action": "set_volume", "volume": 25, "ts": now, "expires_at": now + 60})
        fleet.fault(dev.id, "offline_clean", on=False)
        [ack] = rec.wait(lambda g: len(g) >= 1, device=dev.id, channel="ack")
        assert ack.json()["id"] == "vol-1" and ack.json()["state"] == "done"
        assert fleet.speaker(dev.id).player.volume == 25


def test_device_with_its_own_password_connects_to_a_broker_that_requires_it(tmp_path: object) -> None:
    import shutil
    import subprocess
    from pathlib import Path

    work = Path(str(tmp_path))
    passwd = work / "passwd"
    tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    subprocess.run([tool, "-c", "-b", str(passwd), "c-auth", "right"], check=True, capture_output=True)
    # `user root`: the fixture dirs are private to root, where a privilege-dropped broker cannot read
    server = MosquittoServer(work / "m", config=f"user root\nallow_anonymous false\npassword_file {passwd}\n").start()
    try:
        good, bad = DeviceSpec("c-auth", "camera", password="right"), DeviceSpec("c-auth", "camera", password="wrong")
        with running_fleet(server.url, [good]) as fleet:
            assert fleet.device("c-auth").connected.is_set()
        from device_sim import Fleet, FleetConfig

        fleet = Fleet(FleetConfig(devices=[bad], broker_url=server.url)).start()
        try:
            assert not fleet.wait_connected(timeout=1.5)
            assert fleet.stats.connect_failures >= 1
        finally:
            fleet.stop(timeout=2)
    finally:
        server.stop()


def test_device_without_connack_gives_up_counts_it_and_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    import device_sim.device as device_mod
    from device_sim import Fleet, FleetConfig

    monkeypatch.setattr(device_mod, "CONNACK_TIMEOUT_S", 0.3)
    monkeypatch.setattr(device_mod, "RECONNECT_MIN_S", 0.1)
    with socket.socket() as silent:  # accepts TCP (backlog) and never answers MQTT
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        fleet = Fleet(FleetConfig(devices=[DeviceSpec("c-silent", "camera")], broker_url=f"mqtt://127.0.0.1:{port}"))
        fleet.start()
        try:
            deadline = time.monotonic() + 5
            while fleet.stats.connect_failures < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert fleet.stats.connect_failures >= 2 and fleet.connected_count() == 0
        finally:
            fleet.stop(timeout=1)
