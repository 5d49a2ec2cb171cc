"""The ledger and the ranking end to end: the hub in-process against real Mosquitto and
influxd, a simulated camera (device_sim), the HTTP API with real tokens.

camera alarm → problem with its before-photo → assigned → after-photo from a fresh snapshot
of the camera → fixed → verified → closed; counts in InfluxDB; a ranking computed from the
presence the hub stored in influxd."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest

from device_sim import DeviceOptions, DeviceSpec, Fleet, FleetConfig
from tests.hubproc import InProcessHub, http
from tests.servers import InfluxServer, MosquittoServer

pytestmark = pytest.mark.e2e


def wait_for(cond: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"{what} not met in {timeout} s")


@pytest.fixture
def camera(hub: InProcessHub, mosquitto: MosquittoServer) -> Iterator[tuple[str, Fleet]]:
    cam = "cam-p-" + hub.settings.mqtt.client_id.rsplit("-", 1)[-1]
    hub.services.registry.import_township({"township": {"name": "测试乡", "villages": [
        {"id": "v01", "name": "李家村", "groups": [{"id": "v01-g1", "name": "一组", "devices": [
            {"id": cam, "kind": "camera", "name": "村口"}]}]},
        {"id": "v02", "name": "王庄村", "groups": []},
    ]}})
    fleet = Fleet(FleetConfig(devices=[DeviceSpec(cam, "camera", "v01", "v01-g1")], broker_url=mosquitto.url,
                              options=DeviceOptions(heartbeat_interval_s=1.0, snapshot_interval_s=1.0,
                                                    width=640, height=360)))
    fleet.start()
    try:
        assert fleet.wait_connected(timeout=10)
        yield cam, fleet
    finally:
        fleet.stop()


def test_camera_alarm_to_closed_problem_and_a_ranking_from_influx(
        hub: InProcessHub, camera: tuple[str, Fleet], influxdb: InfluxServer) -> None:
    cam, fleet = camera
    operator = hub.services.tokens.create("值班员", "operator")
    viewer = hub.services.tokens.create("大屏", "viewer")

    def api(method: str, path: str, body: Any = None, token: str = operator) -> tuple[int, Any]:
        return http(method, hub.url + "/api/v1" + path, body, token, timeout=30)

    # the camera is covered: the hub raises the alarm
    wait_for(lambda: hub.services.snapshots.storage.latest(cam), 20, "a first snapshot")  # type: ignore[union-attr]
    fleet.fault(cam, "covered")
    alarm = wait_for(lambda: next((a for a in hub.services.alerts.open_alerts()
                                   if a.key == f"camera:{cam}:covered"), None), 40, "the covered alarm")

    # the operator turns it into a problem: village from the registry, the latest snapshot as before-photo
    status, p = api("POST", "/problems", {"category": "device_fault", "title": "摄像头被遮挡",
                                          "alert_key": alarm.key, "before_from_camera": cam,
                                          "deadline": time.time() + 3 * 86400})
    assert status == 201, p
    assert (p["village"], p["group"], p["device_id"]) == ("v01", "v01-g1", cam)
    (before,) = p["photos"]
    assert before["stage"] == "before" and before["source"] == "camera"
    status, before_jpeg = http("GET", hub.url + before["url"], token=viewer)
    assert status == 200 and before_jpeg[:2] == b"\xff\xd8"
    status, got = api("POST", f"/problems/{p['id']}/transitions", {"to": "assigned", "owner": "李四"})
    assert status == 200 and got["state"] == "assigned"

    # fixed in the field; the after-photo is a fresh snapshot the camera takes on request
    fleet.fault(cam, "covered", on=False)
    status, after = api("POST", f"/problems/{p['id']}/photos", {"stage": "after", "from_camera": cam, "fresh": True})
    assert status == 201, after
    assert after["stage"] == "after" and after["source"] == "camera" and after["taken_at"] > before["taken_at"]
    status, after_jpeg = http("GET", hub.url + after["url"], token=viewer)
    assert status == 200 and after_jpeg[:2] == b"\xff\xd8" and after_jpeg != before_jpeg
    for to in ("fixed", "verified", "closed"):
        status, got = api("POST", f"/problems/{p['id']}/transitions", {"to": to, "note": to})
        assert status == 200, got
    status, final = api("GET", f"/problems/{p['id']}", token=viewer)
    assert final["state"] == "closed" and [h["to"] for h in final["history"]] == [
        "open", "assigned", "fixed", "verified", "closed"]
    assert {ph["stage"] for ph in final["photos"]} == {"before", "after"}
    status, _ = api("POST", f"/problems/{p['id']}/transitions", {"to": "assigned", "owner": "x"})
    assert status == 409

    # the counts reach InfluxDB
    db = hub.db  # type: ignore[attr-defined]
    rows = wait_for(lambda: [r for r in influxdb.rows("SELECT * FROM problems", db=db) if r["closed"] == 1],
                    20, "problems counts in InfluxDB")
    assert rows[-1]["village"] == "v01" and rows[-1]["category"] == "device_fault" and rows[-1]["open"] == 0

    # the camera goes away; the ranking reads its presence back from influxd
    fleet.stop()
    wait_for(lambda: influxdb.rows(f"SELECT * FROM presence WHERE device = '{cam}' AND online = false", db=db),
             30, "the offline presence in InfluxDB")
    status, ranking = api("GET", "/rankings?period=" + datetime.now(hub.settings.zone).strftime("%G-W%V"), token=viewer)
    assert status == 200, ranking
    items = {i["village"]: i for i in ranking["items"]}
    avail = items["v01"]["breakdown"]["availability"]
    assert 0.0 < avail["value"] < 1.0 and "1 台设备" in avail["detail"]
    assert items["v02"]["breakdown"]["availability"]["detail"] == "无数据"
    assert items["v01"]["rank"] == 2 and items["v02"]["rank"] == 1
