"""Broadcasts end to end: the hub in-process, simulated speakers (device_sim), real Mosquitto
and InfluxDB, the HTTP API with real tokens."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from device_sim import DeviceOptions, DeviceSpec, Fleet, FleetConfig
from tests.hubproc import InProcessHub, hub_settings
from tests.servers import InfluxServer, MosquittoServer

pytestmark = pytest.mark.e2e

SHORT = "开会了"  # the simulated speaker reads 4 characters a second: about 1 s
LONG = "天干物燥，小心火烛。" * 8  # about 20 s


def wait_for(cond: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"{what} not met in {timeout} s")


class Town:
    def __init__(self, hub: InProcessHub, fleet: Fleet, ids: dict[str, str]) -> None:
        self.hub, self.fleet, self.ids = hub, fleet, ids

    def post(self, body: dict[str, Any], token: str | None = None) -> tuple[int, Any]:
        kw = {"token": token} if token else {}
        return self.hub.api("POST", "/api/v1/broadcasts", body, **kw)

    def states(self, bid: str) -> dict[str, str]:
        status, one = self.hub.api("GET", f"/api/v1/broadcasts/{bid}")
        assert status == 200, one
        if not one["occurrences"]:
            return {}
        return {d["device"]: d["state"] for d in one["occurrences"][-1]["deliveries"]}

    def wait_states(self, bid: str, want: dict[str, str], timeout: float = 15.0) -> None:
        wait_for(lambda: all(self.states(bid).get(self.ids[k]) == v for k, v in want.items()),
                 timeout, f"states {want} (have {self.states(bid)})")


def body(title: str, text: str, villages: list[str], priority: int = 3, **kw: Any) -> dict[str, Any]:
    return {"title": title, "media": {"type": "tts", "text": text, "lang": "zh"},
            "targets": {"all": False, "villages": villages, "groups": [], "devices": []},
            "priority": priority, "volume": 70, "repeat": 1, **kw}


TOWNSHIP_SPEAKERS = (("a1", "v01", "v01-g1"), ("a2", "v01", "v01-g1"), ("b1", "v02", "v02-g1"))


def populate(hub: InProcessHub, ids: dict[str, str]) -> None:
    hub.services.registry.import_township({"township": {"name": "测试乡", "villages": [
        {"id": "v01", "name": "李家村", "groups": [{"id": "v01-g1", "name": "一组", "devices": [
            {"id": ids["a1"], "kind": "speaker", "name": "广场"},
            {"id": ids["a2"], "kind": "speaker", "name": "村口"}]}]},
        {"id": "v02", "name": "王庄村", "groups": [{"id": "v02-g1", "name": "一组", "devices": [
            {"id": ids["b1"], "kind": "speaker", "name": "小学"}]}]},
    ]}})
    for v in ("v01", "v02"):  # the test may run at night in Asia/Shanghai
        status, _ = hub.api("PUT", f"/api/v1/broadcasts/quiet-hours/{v}",
                            {"start": "00:00", "end": "00:00"})
        assert status == 200


@contextlib.contextmanager
def speakers_of(hub: InProcessHub, mosquitto: MosquittoServer) -> Iterator[Town]:
    tag = hub.settings.mqtt.client_id.rsplit("-", 1)[-1]
    ids = {k: f"spk-{k}-{tag}" for k, _v, _g in TOWNSHIP_SPEAKERS}
    populate(hub, ids)
    fleet = Fleet(FleetConfig(
        devices=[DeviceSpec(ids[k], "speaker", v, g) for k, v, g in TOWNSHIP_SPEAKERS],
        broker_url=mosquitto.url, options=DeviceOptions(heartbeat_interval_s=1.0)))
    fleet.start()
    try:
        assert fleet.wait_connected(timeout=10)
        wait_for(lambda: all(hub.services.live.status(i) == "online" for i in ids.values()),
                 10, "speakers online at the hub")
        yield Town(hub, fleet, ids)
    finally:
        fleet.stop()


@pytest.fixture
def town(hub: InProcessHub, mosquitto: MosquittoServer) -> Iterator[Town]:
    with speakers_of(hub, mosquitto) as t:
        yield t


def test_routine_broadcast_to_one_village_is_played_and_recorded(
        town: Town, influxdb: InfluxServer) -> None:
    status, created = town.post(body("开会通知", SHORT, ["v01"]))
    assert status == 201, created
    bid = created["id"]
    town.wait_states(bid, {"a1": "done", "a2": "done"})
    _, one = town.hub.api("GET", f"/api/v1/broadcasts/{bid}")
    summary = one["occurrences"][0]["summary"]
    assert summary["by_village"] == {"v01": {"done": 2, "total": 2}}
    assert town.ids["b1"] not in town.states(bid)
    db = town.hub.db  # type: ignore[attr-defined]
    rows = wait_for(lambda: influxdb.rows(
        f"SELECT * FROM delivery WHERE broadcast_id = '{bid}' AND state = 'done'", db=db),
        10, "delivery points in InfluxDB")
    assert {r["device"] for r in rows} == {town.ids["a1"], town.ids["a2"]}
    assert {r["village"] for r in rows} == {"v01"} and {r["priority"] for r in rows} == {"3"}


def test_emergency_preempts_a_routine_broadcast(town: Town) -> None:
    _, routine = town.post(body("防火提醒", LONG, ["v01"]))
    town.wait_states(routine["id"], {"a1": "playing", "a2": "playing"})
    status, emergency = town.post(body("紧急通知", SHORT, ["v01", "v02"], priority=9))
    assert status == 201, emergency
    town.wait_states(emergency["id"], {"a1": "done", "a2": "done", "b1": "done"})
    assert set(town.states(routine["id"]).values()) == {"preempted"}


def test_operator_is_refused_an_emergency_and_a_bad_body_names_the_field(town: Town) -> None:
    operator = town.hub.services.tokens.create("desk", "operator")
    status, refused = town.post(body("紧急", SHORT, ["v01"], priority=8), token=operator)
    assert status == 403 and "admin" in str(refused)
    status, bad = town.post({**body("x", SHORT, ["v01"]), "volume": 101})
    assert status == 422 and "volume" in str(bad)
    status, bad = town.post({**body("x", SHORT, ["v01"]), "schedule": {"rrule": "FREQ=NEVER"}})
    assert status == 422 and "rrule" in str(bad)


def test_cancel_while_playing_stops_the_speakers(town: Town) -> None:
    _, routine = town.post(body("长通知", LONG, ["v02"], schedule={"rrule": "FREQ=HOURLY;COUNT=3"}))
    bid = routine["id"]
    town.wait_states(bid, {"b1": "playing"})
    status, after = town.hub.api("POST", f"/api/v1/broadcasts/{bid}/cancel")
    assert status == 200 and after["status"] == "cancelled" and after["upcoming"] == []
    town.wait_states(bid, {"b1": "done"})  # the speaker acks the stopped play `done`
    player = town.fleet.speaker(town.ids["b1"]).player
    assert player.current is None


def test_hub_restarted_between_scheduling_and_fire_time_fires_once(
        tmp_path: Any, mosquitto: MosquittoServer, influxdb: InfluxServer) -> None:
    settings = hub_settings(tmp_path, mosquitto.url, influxdb.url, influx_db="vh_bc_restart")
    first = InProcessHub(settings).start()
    with speakers_of(first, mosquitto) as town:
        at = datetime.now().astimezone() + timedelta(seconds=4)
        status, created = town.post(body("重启后播放", SHORT, ["v02"],
                                         schedule={"start": at.isoformat()}))
        assert status == 201, created
        first.stop()
        time.sleep(max(0.0, at.timestamp() - time.time()) + 1)  # the slot passes while it is down
        second = InProcessHub(settings).start()
        try:
            town.hub = second
            town.wait_states(created["id"], {"b1": "done"}, timeout=20)
            _, one = second.api("GET", f"/api/v1/broadcasts/{created['id']}")
            assert [o["status"] for o in one["occurrences"]] == ["fired"]
            played = town.fleet.speaker(town.ids["b1"]).player.played
            assert [p.outcome for p in played] == ["done"]
        finally:
            second.stop()


def test_emergency_to_an_offline_speaker_alerts_then_plays_once_when_it_is_back(town: Town) -> None:
    b1 = town.ids["b1"]
    town.fleet.fault(b1, "offline_clean", on=True)
    wait_for(lambda: town.hub.services.live.status(b1) == "offline", 10, "b1 offline at the hub")
    status, created = town.post(body("紧急疏散", SHORT, ["v02"], priority=9))
    assert status == 201, created
    bid = created["id"]
    town.wait_states(bid, {"b1": "offline"})
    key = f"broadcast_undelivered:{bid}:{b1}"

    def open_keys() -> set[str]:
        _, alerts = town.hub.api("GET", "/api/v1/alerts?state=open")
        return {a["key"] for a in alerts["items"]}

    wait_for(lambda: key in open_keys(), 10, "an open undelivered-emergency alert")
    town.fleet.fault(b1, "offline_clean", on=False)
    town.wait_states(bid, {"b1": "done"}, timeout=20)
    wait_for(lambda: key not in open_keys(), 10, "the alert cleared")
    assert [p.outcome for p in town.fleet.speaker(b1).player.played] == ["done"]
