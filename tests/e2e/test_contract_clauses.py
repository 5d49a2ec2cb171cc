"""PROTOCOL clauses that had no test of their own, each checked as the contract words it, end to
end: raw MQTT devices (tests/e2e/fielddev.py) → the hub → real Mosquitto and influxd.
(The hub's Will `offline` on `hub/status` is in test_hub_behind_acl.py, behind the real ACL.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hub import metrics
from tests.e2e.fielddev import FieldDevice
from tests.hubproc import InProcessHub, http, hub_settings
from tests.servers import InfluxServer, MosquittoServer, free_port

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(every)


def rejected(kind: str, reason: str) -> float:
    return float(metrics.messages_rejected.labels(kind=kind, reason=reason)._value.get())


def rows(influxdb: InfluxServer, hub: InProcessHub, q: str) -> list[dict[str, Any]]:
    return influxdb.rows(q, hub.db)  # type: ignore[attr-defined]


@pytest.fixture
def devices(mosquitto: MosquittoServer) -> Iterator[Callable[..., FieldDevice]]:
    made: list[FieldDevice] = []

    def make(device_id: str, **kw: Any) -> FieldDevice:
        d = FieldDevice(mosquitto.port, device_id, **kw)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


def register(hub: InProcessHub, device_id: str, kind: str, village: str | None = None,
             group: str | None = None) -> None:
    body: dict[str, Any] = {"kind": kind, "name": f"设备 {device_id}"}
    if village:
        body["village"] = village
    if group:
        body["group"] = group
    status, out = hub.api("PUT", f"/api/v1/devices/{device_id}", body)
    assert status in (200, 201), out


def township(hub: InProcessHub) -> None:
    """Villages v01 (groups g01, g02) and v02 (group g03)."""
    for v in ("v01", "v02"):
        assert hub.api("PUT", f"/api/v1/villages/{v}", {"name": f"村 {v}"})[0] in (200, 201)
    for g, v in (("g01", "v01"), ("g02", "v01"), ("g03", "v02")):
        assert hub.api("PUT", f"/api/v1/groups/{g}", {"village": v, "name": f"组 {g}"})[0] in (200, 201)


def broadcast(hub: InProcessHub, targets: dict[str, Any], **extra: Any) -> str:
    body = {"title": "合同测试", "media": {"type": "tts", "text": "测试", "lang": "zh"},
            "targets": targets, "priority": 8, "volume": 60, "repeat": 1, **extra}
    status, created = hub.api("POST", "/api/v1/broadcasts", body)
    assert status == 201, created
    return str(created["id"])


def delivery_states(hub: InProcessHub, bid: str) -> dict[str, str]:
    status, b = hub.api("GET", f"/api/v1/broadcasts/{bid}")
    assert status == 200, b
    return {d["device"]: d["state"] for o in b["occurrences"] for d in o["deliveries"]}


# --------------------------------------------------------------------------- §3 heartbeats


def test_heartbeat_sent_at_qos_0_is_stored(hub: InProcessHub, influxdb: InfluxServer, devices: Any) -> None:
    cam = devices("cam-qos0", acks=None)
    cam.publish("heartbeat", {"kind": "camera", "seq": 7, "fps": 12.5}, qos=0)
    [row] = wait_for(lambda: rows(influxdb, hub, "SELECT * FROM heartbeat WHERE device='cam-qos0'"))
    assert row["seq"] == 7 and row["fps"] == 12.5


def test_heartbeat_of_16_kib_is_stored_and_one_byte_more_is_rejected_whole(
    hub: InProcessHub, influxdb: InfluxServer, devices: Any,
) -> None:
    cam = devices("cam-16k", acks=None)

    def padded(seq: int, size: int) -> bytes:
        head = f'{{"kind": "camera", "seq": {seq}, "pad": "'.encode()
        body = head + b"x" * (size - len(head) - 2) + b'"}'
        assert len(body) == size
        return body

    too_large = rejected("heartbeat", "too_large")
    cam.publish("heartbeat", padded(1, 16 * 1024))
    cam.publish("heartbeat", padded(2, 16 * 1024 + 1))
    cam.publish("heartbeat", padded(3, 100))  # a marker: once it is stored, seq 2 was handled
    got = wait_for(lambda: (r := rows(influxdb, hub, "SELECT seq FROM heartbeat WHERE device='cam-16k'"))
                   and 3 in [x["seq"] for x in r] and r)
    assert sorted(x["seq"] for x in got) == [1, 3]
    assert rejected("heartbeat", "too_large") - too_large == 1


# --------------------------------------------------------------------------- §5 events


def test_power_loss_raises_an_alert_power_restored_clears_it_and_fault_raises_one(
    hub: InProcessHub, influxdb: InfluxServer, devices: Any,
) -> None:
    spk = devices("spk-power", acks=None)
    alerts = hub.services.alerts
    spk.publish("event", {"type": "power_loss", "ts": time.time(), "detail": {"battery_pct": 80}})
    wait_for(lambda: alerts.is_open("power_loss:spk-power"))
    spk.publish("event", {"type": "power_restored", "ts": time.time()})
    wait_for(lambda: not alerts.is_open("power_loss:spk-power"))
    spk.publish("event", {"type": "fault", "ts": time.time(), "detail": {"code": "amp_overheat"}})
    wait_for(lambda: alerts.is_open("fault:spk-power"))
    stored = wait_for(lambda: len(r := rows(influxdb, hub, "SELECT * FROM event WHERE device='spk-power'")) == 3
                      and r)
    assert [r["type"] for r in stored] == ["power_loss", "power_restored", "fault"]
    assert json.loads(stored[2]["detail"]) == {"code": "amp_overheat"}


# --------------------------------------------------------------------------- §6 acks


def test_device_failed_and_rejected_acks_become_the_delivery_states(hub: InProcessHub, devices: Any) -> None:
    register(hub, "spk-fails", "speaker")
    register(hub, "spk-busy", "speaker")
    devices("spk-fails", acks=lambda c: [("received", ""), ("failed", "amplifier_fault")])
    devices("spk-busy", acks=lambda c: [("rejected", "busy")])
    wait_for(lambda: all(hub.services.live.status(d) == "online" for d in ("spk-fails", "spk-busy")))
    bid = broadcast(hub, {"devices": ["spk-fails", "spk-busy"]})
    wait_for(lambda: delivery_states(hub, bid) == {"spk-fails": "failed", "spk-busy": "rejected"})
    _, b = hub.api("GET", f"/api/v1/broadcasts/{bid}")
    reasons = {d["device"]: d["reason"] for d in b["occurrences"][-1]["deliveries"]}
    assert reasons == {"spk-fails": "amplifier_fault", "spk-busy": "busy"}


# --------------------------------------------------------------------------- §7 HTTP API


def test_targets_all_plays_on_every_registered_speaker_and_nothing_else(hub: InProcessHub, devices: Any) -> None:
    township(hub)
    speakers = {"spk-all-1": "v01", "spk-all-2": "v02"}
    for sid, village in speakers.items():
        register(hub, sid, "speaker", village)
    register(hub, "cam-all-1", "camera", "v01")
    spk = {sid: devices(sid) for sid in speakers}
    cam = devices("cam-all-1", acks=None)
    wait_for(lambda: all(hub.services.live.status(s) == "online" for s in speakers))
    bid = broadcast(hub, {"all": True})
    wait_for(lambda: delivery_states(hub, bid) == dict.fromkeys(speakers, "done"))
    assert all([c["broadcast_id"] for c in d.commands("play")] == [bid] for d in spk.values())
    cam.publish("heartbeat", {"kind": "camera"})  # the camera is connected and subscribed to its cmd
    assert cam.commands() == []


def test_readyz_is_503_and_names_the_store_when_influxdb_is_unreachable(
    tmp_path: Path, mosquitto: MosquittoServer,
) -> None:
    hub = InProcessHub(hub_settings(tmp_path, mosquitto.url, f"http://127.0.0.1:{free_port()}")).start()
    try:
        status, body = http("GET", hub.url + "/readyz", token=None)
        assert status == 503 and body["store"] == "unreachable" and body["mqtt"] == "ok", body
    finally:
        hub.stop()


def test_readyz_is_503_and_names_the_broker_when_mosquitto_is_down(
    tmp_path: Path, fresh_mosquitto: MosquittoServer, influxdb: InfluxServer,
) -> None:
    hub = InProcessHub(hub_settings(tmp_path, fresh_mosquitto.url, influxdb.url, influx_db="vh_readyz")).start()
    try:
        assert http("GET", hub.url + "/readyz", token=None)[0] == 200
        fresh_mosquitto.stop()
        _, body = wait_for(lambda: (r := http("GET", hub.url + "/readyz", token=None))[0] == 503 and r)
        assert body["mqtt"] == "unreachable" and body["store"] == "ok", body
    finally:
        hub.stop()


def test_broadcasts_now_lists_what_plays_and_what_is_next(hub: InProcessHub, devices: Any) -> None:
    register(hub, "spk-now", "speaker")
    devices("spk-now", acks=lambda c: [("received", ""), ("playing", "")])  # still playing
    wait_for(lambda: hub.services.live.status("spk-now") == "online")
    playing = broadcast(hub, {"devices": ["spk-now"]})
    later_at = datetime.fromtimestamp(time.time() + 86_400, ZoneInfo("Asia/Shanghai")).replace(microsecond=0)
    later = broadcast(hub, {"devices": ["spk-now"]}, priority=3, schedule={"start": later_at.isoformat()})
    wait_for(lambda: delivery_states(hub, playing) == {"spk-now": "playing"})
    status, now = hub.api("GET", "/api/v1/broadcasts/now")
    assert status == 200, now
    assert [(p["broadcast_id"], p["speakers"]) for p in now["playing"]] == [(playing, 1)]
    assert [(n["broadcast_id"], n["at"]) for n in now["next"]] == [(later, later_at.timestamp())]


def test_devices_filter_by_kind_village_group_and_status(hub: InProcessHub, devices: Any) -> None:
    township(hub)
    register(hub, "cam-f1", "camera", "v01", "g01")
    register(hub, "cam-f2", "camera", "v02", "g03")
    register(hub, "spk-f1", "speaker", "v01", "g02")
    devices("cam-f1", acks=None)  # online; the others never connected

    def ids(query: str) -> set[str]:
        status, body = hub.api("GET", f"/api/v1/devices?{query}")
        assert status == 200, body
        return {d["id"] for d in body["items"]}

    wait_for(lambda: ids("status=online") == {"cam-f1"})
    assert ids("kind=camera") == {"cam-f1", "cam-f2"}
    assert ids("kind=speaker") == {"spk-f1"}
    assert ids("village=v01") == {"cam-f1", "spk-f1"}
    assert ids("group=g03") == {"cam-f2"}
    assert ids("village=v01&kind=camera") == {"cam-f1"}
    assert ids("status=unknown") == {"cam-f2", "spk-f1"}
    _, body = hub.api("GET", "/api/v1/devices?group=g01")
    [item] = body["items"]
    assert {k: item[k] for k in ("id", "kind", "village", "group", "name", "status")} == {
        "id": "cam-f1", "kind": "camera", "village": "v01", "group": "g01", "name": "设备 cam-f1",
        "status": "online"}
    assert isinstance(item["last_seen"], float) and abs(item["last_seen"] - time.time()) < 60


# --------------------------------------------------------------------------- §8 operations


def test_villagehub_token_create_console_script_prints_a_token_the_hub_accepts(hub: InProcessHub) -> None:
    script = Path(sys.executable).parent / "villagehub"
    assert script.exists(), f"the console script is not installed at {script}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VH_")}
    env["VH_DATA_DIR"] = str(hub.settings.data_dir)
    r = subprocess.run([str(script), "token", "create", "--role", "viewer", "--name", "墙屏"],
                       env=env, capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert token and "\n" not in token
    assert hub.api("GET", "/api/v1/devices", token=token)[0] == 200
    assert hub.api("POST", "/api/v1/broadcasts", {}, token=token)[0] == 403  # a viewer, as asked


def test_topic_root_moves_every_topic_and_the_default_root_is_not_heard(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxServer, devices: Any,
) -> None:
    root = "township-7/vh/v1"
    db = "vh_topic_root"
    hub = InProcessHub(hub_settings(tmp_path, mosquitto.url, influxdb.url, influx_db=db, topic_root=root)).start()
    try:
        watcher = devices("cam-root", root=root, acks=None, watch_hub=True)
        watcher.wait_message(lambda m: m.topic == f"{root}/hub/status" and m.payload == b"online")
        old = devices("cam-root-old", acks=None)
        old.publish("heartbeat", {"kind": "camera", "seq": 1})  # the default root: not the hub's
        watcher.publish("heartbeat", {"kind": "camera", "seq": 2})  # the marker, on the new root
        got = wait_for(lambda: influxdb.rows("SELECT seq FROM heartbeat GROUP BY device", db))
        assert [(r["device"], r["seq"]) for r in got] == [("cam-root", 2)]
        assert hub.services.live.status("cam-root-old") != "online"
    finally:
        hub.stop()


def test_tz_is_the_zone_of_a_schedule_given_without_an_offset(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxServer,
) -> None:
    hub = InProcessHub(hub_settings(tmp_path, mosquitto.url, influxdb.url, influx_db="vh_tz",
                                    tz="Europe/Berlin")).start()
    try:
        bid = broadcast(hub, {"devices": ["spk-nowhere"]}, priority=3,
                        schedule={"start": "2030-01-15T07:30:00", "rrule": "FREQ=DAILY;COUNT=2"})
        _, b = hub.api("GET", f"/api/v1/broadcasts/{bid}")
        berlin = datetime(2030, 1, 15, 7, 30, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()
        assert b["next_at"] == berlin, (b["next_at"], berlin)  # not 07:30 in Shanghai (7 h earlier)
    finally:
        hub.stop()


def test_influx_v1_credentials_are_used_and_required(
    tmp_path: Path, mosquitto: MosquittoServer, devices: Any,
) -> None:
    server = InfluxServer(tmp_path / "influx-auth", auth=("vhadmin", "s3cret-pw")).start()
    hubs: list[InProcessHub] = []
    try:
        good = InProcessHub(hub_settings(tmp_path / "good", mosquitto.url, server.url, influx_db="vh_auth",
                                         influx_user="vhadmin", influx_password="s3cret-pw"))
        hubs.append(good.start())
        assert http("GET", good.url + "/readyz", token=None)[0] == 200
        cam = devices("cam-auth", acks=None)
        cam.publish("heartbeat", {"kind": "camera", "seq": 1})
        [row] = wait_for(lambda: server.rows("SELECT seq FROM heartbeat WHERE device='cam-auth'", "vh_auth"))
        assert row["seq"] == 1
        good.stop()
        hubs.clear()

        errors_before = sum(s.value for fam in metrics.write_errors.collect() for s in fam.samples
                            if s.name.endswith("_total"))
        anonymous = InProcessHub(hub_settings(tmp_path / "anon", mosquitto.url, server.url, influx_db="vh_auth"))
        hubs.append(anonymous.start())
        cam.publish("heartbeat", {"kind": "camera", "seq": 2})
        wait_for(lambda: sum(s.value for fam in metrics.write_errors.collect() for s in fam.samples
                             if s.name.endswith("_total")) > errors_before)
        assert [r["seq"] for r in server.rows("SELECT seq FROM heartbeat WHERE device='cam-auth'", "vh_auth")] == [1]
    finally:
        for h in hubs:
            h.stop()
        server.stop()


# --------------------------------------------------------------------------- §9 schema


def test_registered_devices_points_carry_village_and_village_group_tags(
    hub: InProcessHub, influxdb: InfluxServer, devices: Any,
) -> None:
    township(hub)
    register(hub, "cam-tags", "camera", "v01", "g02")
    cam = devices("cam-tags", acks=None)
    cam.publish("heartbeat", {"kind": "camera", "seq": 1, "fps": 20})
    cam.publish("event", {"type": "motion", "ts": time.time()})
    stranger = devices("cam-untagged", acks=None)
    stranger.publish("heartbeat", {"kind": "camera", "seq": 1})
    for measurement in ("heartbeat", "event"):
        query = f"SELECT * FROM {measurement} WHERE device='cam-tags'"
        [row] = wait_for(lambda q=query: rows(influxdb, hub, q))  # type: ignore[misc]
        assert (row["village"], row["village_group"]) == ("v01", "g02"), (measurement, row)
    [row] = wait_for(lambda: rows(influxdb, hub, "SELECT * FROM heartbeat WHERE device='cam-untagged'"))
    assert row.get("village") in ("", None) and row.get("village_group") in ("", None)
