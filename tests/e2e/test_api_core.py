"""PROTOCOL §7: health routes, auth and roles, devices, overview, series — against a real hub."""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.conftest import raw_client
from tests.hubproc import InProcessHub, http
from tests.servers import InfluxServer, MosquittoServer

pytestmark = pytest.mark.e2e

TOWNSHIP = {
    "township": {
        "name": "测试乡",
        "villages": [
            {"id": "v01", "name": "李家村", "lat": 30.6, "lon": 114.3, "groups": [
                {"id": "v01-g1", "name": "第一村民组", "devices": [
                    {"id": "cam-a1", "kind": "camera", "name": "村委会门口"},
                    {"id": "spk-a1", "kind": "speaker", "name": "文化广场"},
                ]},
            ]},
            {"id": "v02", "name": "王庄村", "lat": 30.62, "lon": 114.31, "groups": [
                {"id": "v02-g1", "name": "第一村民组", "devices": [
                    {"id": "cam-b1", "kind": "camera", "name": "小学路口"},
                ]},
            ]},
        ],
    }
}


@pytest.fixture
def township_hub(hub: InProcessHub) -> InProcessHub:
    hub.services.registry.import_township(TOWNSHIP)
    return hub


def test_healthz_needs_no_token(hub: InProcessHub) -> None:
    assert http("GET", hub.url + "/healthz", token=None)[0] == 200


def test_readyz_is_200_with_broker_and_store_reachable(hub: InProcessHub) -> None:
    status, body = http("GET", hub.url + "/readyz", token=None)
    assert status == 200 and body["mqtt"] == "ok" and body["store"] == "ok"


def test_metrics_are_prometheus_text(hub: InProcessHub) -> None:
    status, body = http("GET", hub.url + "/metrics", token=None)
    assert status == 200 and b"vh_messages_received_total" in body


@pytest.mark.parametrize("token", [None, "wrong", ""])
def test_api_without_valid_token_is_401(hub: InProcessHub, token: str | None) -> None:
    assert http("GET", hub.url + "/api/v1/overview", token=token)[0] == 401


def test_roles_viewer_operator_admin(hub: InProcessHub) -> None:
    viewer = hub.services.tokens.create("wall", "viewer")
    operator = hub.services.tokens.create("desk", "operator")
    assert hub.api("GET", "/api/v1/overview", token=viewer)[0] == 200
    assert hub.api("GET", "/api/v1/whoami", token=operator)[1] == {"name": "desk", "role": "operator"}
    assert hub.api("GET", "/api/v1/tokens", token=operator)[0] == 403
    status, created = hub.api("POST", "/api/v1/tokens", {"name": "x", "role": "viewer"})
    assert status == 201 and created["token"].startswith("vh_")
    assert hub.api("GET", "/api/v1/whoami", token=created["token"])[0] == 200


def test_bad_body_is_422_naming_the_field(hub: InProcessHub) -> None:
    status, body = hub.api("POST", "/api/v1/tokens", {"name": "x", "role": "superuser"})
    assert status == 422 and "role" in body["detail"]
    status, body = hub.api("POST", "/api/v1/tokens", {"name": "x", "role": "viewer", "extra": 1})
    assert status == 422 and "extra" in body["detail"]


def test_unknown_device_is_404(hub: InProcessHub) -> None:
    assert hub.api("GET", "/api/v1/devices/nope")[0] == 404
    assert hub.api("GET", "/api/v1/devices/nope/series?field=fps")[0] == 404


def test_failed_authentications_are_rate_limited(hub: InProcessHub) -> None:
    codes = [http("GET", hub.url + "/api/v1/overview", token=f"bad{i}")[0] for i in range(40)]
    assert codes[0] == 401 and codes[-1] == 429


def test_devices_list_filters_and_overview_counts(township_hub: InProcessHub, mosquitto: MosquittoServer) -> None:
    hub = township_hub
    dev = raw_client(mosquitto.port, "cam-a1")
    dev.publish("vhub/v1/dev/cam-a1/heartbeat", json.dumps({"kind": "camera", "fps": 12, "seq": 1}), qos=1)
    deadline = time.monotonic() + 10
    while hub.services.live.status("cam-a1") != "online" and time.monotonic() < deadline:
        time.sleep(0.05)
    status, body = hub.api("GET", "/api/v1/devices?kind=camera")
    assert status == 200 and body["total"] == 2
    by_id = {d["id"]: d for d in body["items"]}
    assert by_id["cam-a1"]["status"] == "online" and by_id["cam-b1"]["status"] == "unknown"
    assert by_id["cam-a1"]["village"] == "v01" and by_id["cam-a1"]["group"] == "v01-g1"
    assert by_id["cam-a1"]["name"] == "村委会门口" and by_id["cam-a1"]["last_seen"] is not None
    assert hub.api("GET", "/api/v1/devices?village=v02")[1]["total"] == 1
    assert hub.api("GET", "/api/v1/devices?status=online")[1]["total"] == 1
    assert hub.api("GET", "/api/v1/devices?limit=5000")[0] == 422
    time.sleep(1.1)  # the overview is cached for one second
    status, ov = hub.api("GET", "/api/v1/overview")
    assert ov["devices"]["camera"] == {"online": 1, "offline": 0, "unknown": 1, "total": 2}
    assert ov["devices"]["speaker"]["total"] == 1
    v01 = next(v for v in ov["villages"] if v["id"] == "v01")
    assert v01["name"] == "李家村" and v01["camera"]["online"] == 1
    status, one = hub.api("GET", "/api/v1/devices/cam-a1")
    assert one["heartbeat"]["fps"] == 12
    dev.loop_stop()


def test_series_returns_time_buckets_from_the_store(township_hub: InProcessHub, mosquitto: MosquittoServer,
                                                    influxdb: InfluxServer) -> None:
    hub = township_hub
    dev = raw_client(mosquitto.port, "spk-a1")
    t0 = time.time() - 100
    for i in range(10):
        dev.publish("vhub/v1/dev/spk-a1/heartbeat",
                    json.dumps({"kind": "speaker", "ts": t0 + i * 10, "seq": i, "volume": 10 * i}), qos=1)
    db = hub.db  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while len(influxdb.rows("SELECT volume FROM heartbeat WHERE device='spk-a1'", db)) < 10:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    status, body = hub.api("GET", f"/api/v1/devices/spk-a1/series?field=volume&start={t0 - 1}&end={t0 + 200}&every=50s")
    assert status == 200, body
    values = [v for _, v in body["points"] if v is not None]
    assert len(values) >= 2 and min(values) < max(values)
    assert hub.api("GET", "/api/v1/devices/spk-a1/series?field=bogus")[0] == 422
    assert hub.api("GET", "/api/v1/devices/spk-a1/series?field=volume&every=1s&start=-30d")[0] == 422
    dev.loop_stop()
