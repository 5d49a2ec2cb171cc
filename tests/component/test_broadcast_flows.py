"""Broadcast flows against a real Mosquitto, with small real speakers made with plain paho.

The speakers follow PROTOCOL §6 as firmware would: they ack `received` then `playing`, ack a
play they were playing `preempted` when a higher priority arrives, act once per command id,
and ack `done` when told to finish (the test decides how long a broadcast lasts).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bench.broadcast_link import BroadcastLink
from hub.broadcasts import BroadcastService, BroadcastSpec, SpeakerRef, Targets
from hub.broadcasts.model import NullAlerts
from hub.clock import ManualClock
from tests.servers import MosquittoServer

pytestmark = pytest.mark.component

ROOT = "vhub/v1"
SH = ZoneInfo("Asia/Shanghai")
NOON = datetime(2026, 12, 1, 12, 0, tzinfo=SH).timestamp()


def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


class Speaker:
    """A loudspeaker as firmware would be: MQTT 3.1.1, persistent session, Will `offline`."""

    def __init__(self, device_id: str, port: int) -> None:
        self.id = device_id
        self.port = port
        self.commands: list[dict[str, Any]] = []
        self.seen: dict[str, str] = {}
        self.current: dict[str, Any] | None = None
        self.lock = threading.Lock()
        self.client = self._client()

    def _client(self) -> mqtt.Client:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.id, clean_session=False,
                        protocol=mqtt.MQTTv311)
        c.will_set(f"{ROOT}/dev/{self.id}/status", b"offline", qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        return c

    def connect(self) -> Speaker:
        self.client = self._client()
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        return self

    def go_offline(self) -> None:
        self.client.publish(f"{ROOT}/dev/{self.id}/status", b"offline", qos=1, retain=True).wait_for_publish(5)
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, c: mqtt.Client, _u: Any, _f: Any, _rc: Any, _p: Any = None) -> None:
        c.subscribe(f"{ROOT}/dev/{self.id}/cmd", qos=1)
        c.publish(f"{ROOT}/dev/{self.id}/status", b"online", qos=1, retain=True)

    def ack(self, cid: str, state: str, reason: str = "") -> None:
        self.seen[cid] = state
        self.client.publish(f"{ROOT}/dev/{self.id}/ack", json.dumps(
            {"id": cid, "state": state, "ts": time.time(), "reason": reason}), qos=1)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        cmd = json.loads(msg.payload)
        if cmd.get("action") == "marker":  # test plumbing, not a §6 action: echo it on the ack topic
            self.client.publish(f"{ROOT}/dev/{self.id}/ack", msg.payload, qos=1)
            return
        with self.lock:
            self.commands.append(cmd)
            if cmd["id"] in self.seen:  # redelivered: ack again, do not act again
                self.ack(cmd["id"], self.seen[cmd["id"]])
                return
            if cmd["action"] == "play":
                cur = self.current
                if cur is not None and cmd["priority"] <= cur["priority"]:
                    self.ack(cmd["id"], "rejected", "busy")
                    return
                if cur is not None:
                    self.ack(cur["id"], "preempted", f"preempted by {cmd['id']}")
                self.current = cmd
                self.ack(cmd["id"], "received")
                self.ack(cmd["id"], "playing")
            elif cmd["action"] == "stop":
                cur = self.current
                if cur is not None and cmd.get("broadcast_id") in (None, cur["broadcast_id"]):
                    self.ack(cur["id"], "done", "stopped")
                    self.current = None
                self.ack(cmd["id"], "done")

    def finish(self) -> None:
        with self.lock:
            assert self.current is not None
            self.ack(self.current["id"], "done")
            self.current = None

    def plays(self) -> list[dict[str, Any]]:
        with self.lock:
            return [c for c in self.commands if c["action"] == "play"]

    def stops(self) -> list[dict[str, Any]]:
        with self.lock:
            return [c for c in self.commands if c["action"] == "stop"]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Hub:
    """The broadcast service with its minimal MQTT edge, on a ManualClock."""

    def __init__(self, tmp: Path, port: int, clock: ManualClock, fleet: list[SpeakerRef]) -> None:
        self.tmp, self.port, self.clock, self.fleet = tmp, port, clock, fleet
        self.closed = False
        self.alerts = NullAlerts()
        self.link = BroadcastLink(f"mqtt://127.0.0.1:{port}", clock, root=ROOT,
                                  client_id=f"hub-{id(self)}")
        self.svc = BroadcastService(tmp / "broadcasts.db", clock, lambda: list(self.fleet),
                                    self.link.is_online, self.link.publish, alerts=self.alerts)
        self.link.attach(self.svc)
        self.markers_back: set[str] = set()
        on_message = self.link.client.on_message

        def spy(c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
            if msg.topic.endswith("/ack") and b'"marker"' in msg.payload:
                self.markers_back.add(json.loads(msg.payload)["id"])
            on_message(c, u, msg)  # type: ignore[misc]

        self.link.client.on_message = spy
        self.link.start()

    def settle(self, *speakers: Speaker) -> None:
        """Everything the hub sent these speakers has reached them and everything they answered
        has been handled, proven by a marker round trip instead of a sleep: the hub finishes what
        it received, sends each a marker after its commands, each echoes it after its acks, and
        the hub handles what came before the echo (the broker keeps each client's order)."""
        self.link.drain()
        want = set()
        for sp in speakers:
            mid = f"marker-{sp.id}-{time.monotonic_ns()}"
            want.add(mid)
            self.link.publish(f"{ROOT}/dev/{sp.id}/cmd", json.dumps({"id": mid, "action": "marker"}).encode())
        wait_for(lambda: want <= self.markers_back)
        self.link.drain()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.link.stop()
        self.svc.stop()

    def states(self, bid: str) -> dict[str, str]:
        occ = self.svc.get(bid)["occurrences"][-1]
        return {d["device"]: d["state"] for d in occ["deliveries"]}

    def wait_states(self, bid: str, want: dict[str, str]) -> None:
        def ok() -> bool:
            self.link.drain()
            got = self.states(bid)
            return all(got.get(k) == v for k, v in want.items())
        try:
            wait_for(ok)
        except AssertionError:
            raise AssertionError(f"states {self.states(bid)} != {want}") from None


@pytest.fixture
def rig(tmp_path: Path, mosquitto: MosquittoServer) -> Iterator[tuple[Hub, dict[str, Speaker]]]:
    # Unique device ids per test on the shared broker (retained status, persistent sessions).
    suffix = str(time.monotonic_ns() % 10**9)
    base = [("v01-s1", "v01", "g1"), ("v01-s2", "v01", "g1"), ("v01-s3", "v01", "g2"),
            ("v02-s1", "v02", "g3")]
    fleet = [SpeakerRef(f"{i}-{suffix}", v, g) for i, v, g in base]
    sp = {s.id.rsplit("-", 1)[0]: Speaker(s.id, mosquitto.port).connect() for s in fleet}
    hub = Hub(tmp_path, mosquitto.port, ManualClock(NOON), fleet)
    wait_for(lambda: all(hub.link.is_online(s.id) for s in sp.values()))
    yield hub, sp
    hub.close()
    for s in sp.values():
        s.close()


def spec(priority: int = 3, villages: tuple[str, ...] = ("v01",), **kw: Any) -> BroadcastSpec:
    return BroadcastSpec(title="通知", media={"type": "tts", "text": "开会", "lang": "zh"},
                         targets=Targets(villages=villages), priority=priority, **kw)


def test_routine_broadcast_reaches_every_speaker_of_one_village(rig: Any) -> None:
    hub, sp = rig
    bid = hub.svc.create(spec(), "op")
    hub.svc.tick()
    for name in ("v01-s1", "v01-s2", "v01-s3"):
        wait_for(lambda n=name: len(sp[n].plays()) == 1)
    hub.wait_states(bid, {sp[n].id: "playing" for n in ("v01-s1", "v01-s2", "v01-s3")})
    for name in ("v01-s1", "v01-s2", "v01-s3"):
        sp[name].finish()
    hub.wait_states(bid, {sp[n].id: "done" for n in ("v01-s1", "v01-s2", "v01-s3")})
    assert sp["v02-s1"].plays() == []
    summary = hub.svc.get(bid)["occurrences"][0]["summary"]
    assert summary["by_village"] == {"v01": {"done": 3, "total": 3}}


def test_emergency_preempts_routine_which_is_acked_preempted(rig: Any) -> None:
    hub, sp = rig
    routine = hub.svc.create(spec(), "op")
    hub.svc.tick()
    hub.wait_states(routine, {sp["v01-s1"].id: "playing"})
    emergency = hub.svc.create(spec(priority=9, villages=("v01", "v02")), "admin")
    hub.svc.tick()
    wait_for(lambda: len(sp["v01-s1"].plays()) == 2)
    assert sp["v01-s1"].seen[sp["v01-s1"].plays()[0]["id"]] == "preempted"
    for s in sp.values():
        wait_for(lambda s=s: s.current is not None and s.current["priority"] == 9)
        s.finish()
    hub.wait_states(emergency, {s.id: "done" for s in sp.values()})
    assert set(hub.states(routine).values()) == {"preempted"}


def test_speaker_offline_during_its_slot_is_served_once_when_back(rig: Any) -> None:
    hub, sp = rig
    late = sp["v02-s1"]
    late.go_offline()
    wait_for(lambda: not hub.link.is_online(late.id))
    bid = hub.svc.create(spec(villages=("v02",)), "op")
    hub.svc.tick()
    assert hub.states(bid) == {late.id: "offline"}
    hub.clock.advance(120)
    late.connect()
    hub.wait_states(bid, {late.id: "playing"})
    hub.svc.tick()
    late.finish()
    hub.wait_states(bid, {late.id: "done"})
    hub.settle(late)
    assert len(late.plays()) == 1


def test_speaker_back_after_expiry_gets_nothing_and_reads_expired(rig: Any) -> None:
    hub, sp = rig
    late = sp["v02-s1"]
    late.go_offline()
    wait_for(lambda: not hub.link.is_online(late.id))
    bid = hub.svc.create(spec(villages=("v02",), valid_for_s=300), "op")
    hub.svc.tick()
    hub.clock.advance(301)
    hub.svc.tick()
    late.connect()
    wait_for(lambda: hub.link.is_online(late.id))
    hub.settle(late)
    assert late.plays() == [] and hub.states(bid) == {late.id: "expired"}


def test_hub_restarted_between_scheduling_and_fire_time_fires_once(
        rig: Any, tmp_path: Path, mosquitto: MosquittoServer) -> None:
    hub, sp = rig
    at = NOON + 600
    bid = hub.svc.create(spec(villages=("v02",), start=datetime.fromtimestamp(at, SH).isoformat()),
                         "op")
    hub.svc.tick()
    hub.close()
    hub.clock.set(at + 30)
    second = Hub(tmp_path, mosquitto.port, hub.clock, hub.fleet)
    wait_for(lambda: second.link.is_online(sp["v02-s1"].id))
    second.svc.start(thread=False)
    wait_for(lambda: len(sp["v02-s1"].plays()) == 1)
    second.wait_states(bid, {sp["v02-s1"].id: "playing"})
    second.close()
    third = Hub(tmp_path, mosquitto.port, hub.clock, hub.fleet)
    try:
        wait_for(lambda: third.link.is_online(sp["v02-s1"].id))
        third.svc.start(thread=False)
        third.settle(sp["v02-s1"])
        assert len(sp["v02-s1"].plays()) == 1
        assert [o["status"] for o in third.svc.get(bid)["occurrences"]] == ["fired"]
        assert third.states(bid) == {sp["v02-s1"].id: "playing"}
    finally:
        third.close()


def test_cancel_while_playing_sends_stop_and_drops_future_occurrences(rig: Any) -> None:
    hub, sp = rig
    bid = hub.svc.create(spec(rrule="FREQ=HOURLY;COUNT=3"), "op")
    hub.svc.tick()
    hub.wait_states(bid, {sp[n].id: "playing" for n in ("v01-s1", "v01-s2", "v01-s3")})
    hub.svc.cancel(bid, "op")
    for n in ("v01-s1", "v01-s2", "v01-s3"):
        wait_for(lambda n=n: [c["broadcast_id"] for c in sp[n].stops()] == [bid])
    hub.wait_states(bid, {sp[n].id: "done" for n in ("v01-s1", "v01-s2", "v01-s3")})
    hub.clock.advance(3 * 3600)
    hub.svc.tick()
    hub.settle(*(sp[n] for n in ("v01-s1", "v01-s2", "v01-s3")))
    assert all(len(sp[n].plays()) == 1 for n in ("v01-s1", "v01-s2", "v01-s3"))
    view = hub.svc.get(bid)
    assert view["status"] == "cancelled" and len(view["occurrences"]) == 1
