"""PROTOCOL §3/§5/§9 end to end: raw MQTT publishes → the hub → InfluxDB (read back with InfluxQL)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from hub import metrics
from tests.e2e.conftest import raw_client
from tests.hubproc import InProcessHub
from tests.servers import InfluxServer, MosquittoServer

pytestmark = pytest.mark.e2e


def wait_for(predicate: Any, timeout: float = 10.0, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s")


def counter(c: Any, **labels: str) -> float:
    return float(c.labels(**labels)._value.get()) if labels else float(c._value.get())


def rejected_by_reason(kind: str, before: dict[str, float]) -> dict[str, float]:
    """vh_messages_rejected_total{kind} per reason, minus `before` (reasons with no change left out)."""
    now: dict[str, float] = {}
    for fam in metrics.messages_rejected.collect():
        for s in fam.samples:
            if s.name.endswith("_total") and s.labels.get("kind") == kind:
                now[s.labels["reason"]] = float(s.value)
    return {r: v - before.get(r, 0.0) for r, v in now.items() if v - before.get(r, 0.0)}


def test_every_heartbeat_field_lands_in_influxdb_with_its_type(
    hub: InProcessHub, mosquitto: MosquittoServer, influxdb: InfluxServer
) -> None:
    cam = raw_client(mosquitto.port, "cam-contract")
    spk = raw_client(mosquitto.port, "spk-contract")
    # a device clock 200.25 s behind: within the 300 s skew, so the point keeps the DEVICE's time
    device_ts = round(time.time() - 200.25, 3)
    t_sent = time.time()
    cam.publish("vhub/v1/dev/cam-contract/heartbeat", json.dumps({
        "kind": "camera", "ts": device_ts, "seq": 1, "interval_s": 30, "uptime_s": 5, "rssi_dbm": -60, "fw": "1.0",
        "fps": 25, "bitrate_kbps": 2048, "temp_c": 40.5, "storage_free_pct": 50, "recording": True,
        "stream_url": "rtsp://10.0.0.1/s"}), qos=1).wait_for_publish(5)
    spk.publish("vhub/v1/dev/spk-contract/heartbeat", json.dumps({
        "kind": "speaker", "seq": 1, "volume": 70, "state": "idle", "playing": None,
        "amp_temp_c": 35.0, "power_w": 2.5, "mains": True, "battery_pct": 90}), qos=1).wait_for_publish(5)
    db = hub.db  # type: ignore[attr-defined]
    # the hub hears every device on the shared broker: read back these two
    ours = "SELECT * FROM heartbeat WHERE \"device\" = 'cam-contract' OR \"device\" = 'spk-contract'"
    rows = wait_for(lambda: len(r := influxdb.rows(ours, db, epoch="u")) == 2 and r)
    t_stored = time.time()
    cam_row = next(r for r in rows if r["device"] == "cam-contract")
    assert cam_row["fps"] == 25 and cam_row["recording"] is True and cam_row["stream_url"] == "rtsp://10.0.0.1/s"
    assert cam_row["kind"] == "camera" and cam_row["seq"] == 1 and cam_row["fw"] == "1.0"
    assert cam_row["time"] == round(device_ts * 1_000_000)  # exactly the device's ts (µs), not the hub's
    # no `ts`: the hub's receive time, which lies between the publish and the read-back
    spk_row = next(r for r in rows if r["device"] == "spk-contract")
    assert t_sent * 1e6 <= spk_row["time"] <= t_stored * 1e6
    field_types = {
        s["values"][i][0]: s["values"][i][1]  # type: ignore[index]
        for s in influxdb.query("SHOW FIELD KEYS FROM heartbeat", db)
        for i in range(len(s["values"]))  # type: ignore[arg-type]
    }
    assert field_types["fps"] == "float" and field_types["seq"] == "integer"
    assert field_types["recording"] == "boolean" and field_types["state"] == "string"
    assert field_types["volume"] == "integer" and field_types["mains"] == "boolean"
    cam.loop_stop()
    spk.loop_stop()


def test_malformed_payloads_are_counted_while_valid_heartbeats_interleaved_are_all_stored(
    hub: InProcessHub, mosquitto: MosquittoServer, influxdb: InfluxServer
) -> None:
    dev = raw_client(mosquitto.port, "cam-bad")
    bad = [b"not json", b'{"fps": 1}', b'{"kind": "camera", "fw": "' + b"x" * 1_000_000 + b'"}',
           b'{"kind": "camera", "fps": NaN}', b"[" * 5000, b'{"kind": "toaster"}', b"\xff\xfe\x00"]
    before_all = rejected_by_reason("heartbeat", {})
    wrong_before = counter(metrics.fields_rejected, field="fps", reason="wrong_type")
    for seq in range(20):
        dev.publish("vhub/v1/dev/cam-bad/heartbeat",
                    json.dumps({"kind": "camera", "seq": seq, "ts": time.time(), "fps": "wrong" if seq == 3 else 10}),
                    qos=1)
        dev.publish("vhub/v1/dev/cam-bad/heartbeat", bad[seq % len(bad)], qos=1)
    db = hub.db  # type: ignore[attr-defined]
    rows = wait_for(lambda: (r := influxdb.rows("SELECT * FROM heartbeat WHERE device='cam-bad'", db))
                    and len(r) == 20 and r)
    assert sorted(r["seq"] for r in rows) == list(range(20))
    assert next(r for r in rows if r["seq"] == 3)["fps"] is None  # the wrong field alone was dropped
    # 20 malformed payloads: bad[0..6] × 3 (seq 0..13), then bad[0..5] once more (seq 14..19)
    wait_for(lambda: rejected_by_reason("heartbeat", before_all) and
             sum(rejected_by_reason("heartbeat", before_all).values()) >= 20)
    delta = rejected_by_reason("heartbeat", before_all)
    assert delta == {"not_json": 11, "missing_kind": 3, "too_large": 3, "bad_kind": 3}, delta
    # the `fps: "wrong"` field alone was rejected (counted per field, the heartbeat kept)
    assert counter(metrics.fields_rejected, field="fps", reason="wrong_type") - wrong_before == 1
    dev.loop_stop()


def test_unregistered_device_is_kept_and_visible_in_the_api(hub: InProcessHub, mosquitto: MosquittoServer) -> None:
    dev = raw_client(mosquitto.port, "cam-stranger")
    dev.publish("vhub/v1/dev/cam-stranger/heartbeat", b'{"kind": "camera", "fps": 5}', qos=1)
    status, body = wait_for(lambda: (r := hub.api("GET", "/api/v1/devices/cam-stranger"))[0] == 200 and r)
    assert body["registered"] is False and body["status"] == "online" and body["heartbeat"]["fps"] == 5
    status, listing = hub.api("GET", "/api/v1/devices?registered=false")
    assert status == 200 and "cam-stranger" in [d["id"] for d in listing["items"]]
    dev.loop_stop()


def test_will_turns_device_offline_within_one_second(hub: InProcessHub, mosquitto: MosquittoServer,
                                                     influxdb: InfluxServer) -> None:
    dev = raw_client(mosquitto.port, "spk-will", will_offline=True)
    dev.publish("vhub/v1/dev/spk-will/status", b"online", qos=1, retain=True).wait_for_publish(5)
    wait_for(lambda: hub.api("GET", "/api/v1/devices/spk-will")[0] == 200 or
             hub.services.live.status("spk-will") == "online")
    assert wait_for(lambda: hub.services.live.status("spk-will") == "online")
    dev.loop_stop()
    dev._sock.close()  # type: ignore[union-attr]  # an unclean drop: the broker publishes the Will
    t0 = time.monotonic()
    wait_for(lambda: hub.services.live.status("spk-will") == "offline", timeout=5, every=0.01)
    # Mosquitto notices the dropped socket at once; the hub must follow within 1 s of the Will.
    assert time.monotonic() - t0 < 1.5
    assert hub.services.alerts.is_open("offline:spk-will")
    db = hub.db  # type: ignore[attr-defined]
    # the `online` point may be stored before the Will's: wait for the Will's to be the last one
    rows = wait_for(lambda: (r := influxdb.rows("SELECT * FROM presence WHERE device='spk-will'", db))
                    and r[-1]["online"] is False and r)
    assert rows[-1]["reason"] == "will" and [r["online"] for r in rows] == [True, False]


def test_events_are_stored_and_alerting_ones_raise_alerts(hub: InProcessHub, mosquitto: MosquittoServer,
                                                         influxdb: InfluxServer) -> None:
    dev = raw_client(mosquitto.port, "cam-ev")
    dev.publish("vhub/v1/dev/cam-ev/event", json.dumps({"type": "tamper", "ts": time.time(),
                                                        "detail": {"angle": 30}}), qos=1)
    dev.publish("vhub/v1/dev/cam-ev/event", b'{"type": "door_open"}', qos=1)
    dev.publish("vhub/v1/dev/cam-ev/event", b"{broken", qos=1)
    db = hub.db  # type: ignore[attr-defined]
    rows = wait_for(lambda: len(r := influxdb.rows("SELECT * FROM event WHERE device='cam-ev'", db)) == 2 and r)
    assert {r["type"] for r in rows} == {"tamper", "door_open"}
    assert json.loads(next(r for r in rows if r["type"] == "tamper")["detail"]) == {"angle": 30}
    assert hub.services.alerts.is_open("tamper:cam-ev")
    dev.loop_stop()
