"""Property: whatever operators and speakers do, the hub never sends a play the speaker would
reject as busy, and never has one speaker play one occurrence twice (PROTOCOL §6)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.broadcasts import BroadcastConfig, BroadcastService, BroadcastSpec, SpeakerRef, Targets
from hub.clock import ManualClock

pytestmark = pytest.mark.unit

SPEAKERS = [SpeakerRef("s1", "v01"), SpeakerRef("s2", "v01"), SpeakerRef("s3", "v02")]
START = 1_764_561_600.0  # 2026-12-01 12:00 Asia/Shanghai: outside quiet hours


class ModelSpeaker:
    """A speaker as §6 describes it; the broker keeps its commands while it is offline."""

    def __init__(self, device_id: str) -> None:
        self.id = device_id
        self.online = True
        self.inbox: list[dict[str, Any]] = []
        self.current: dict[str, Any] | None = None
        self.seen: dict[str, str] = {}
        self.executed: list[str] = []
        self.rejected_busy: list[str] = []

    def take(self, cmd: dict[str, Any], now: float) -> list[tuple[str, str]]:
        acks: list[tuple[str, str]] = []
        cid = cmd["id"]
        if cid in self.seen:
            return [(cid, self.seen[cid])]
        if cmd["action"] == "stop":
            if self.current is not None and cmd.get("broadcast_id") == self.current["broadcast_id"]:
                acks.append((self.current["id"], "done"))
                self.current = None
            acks.append((cid, "done"))
        elif cmd["expires_at"] <= now:
            acks.append((cid, "expired"))
        elif self.current is not None and cmd["priority"] <= self.current["priority"]:
            self.rejected_busy.append(cid)
            acks.append((cid, "rejected"))
        else:
            if self.current is not None:
                acks.append((self.current["id"], "preempted"))
            self.current = cmd
            self.executed.append(cid)
            acks += [(cid, "received"), (cid, "playing")]
        for c, s in acks:
            self.seen[c] = s
        return acks


class World:
    def __init__(self, tmp: Path) -> None:
        self.clock = ManualClock(START)
        self.speakers = {s.id: ModelSpeaker(s.id) for s in SPEAKERS}
        self.acks: list[tuple[str, str, str]] = []
        self.svc = BroadcastService(
            tmp / "b.db", self.clock, lambda: list(SPEAKERS),
            lambda d: self.speakers[d].online, self.publish,
            config=BroadcastConfig(flush_interval_s=0.0))

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
                properties: dict[str, str] | None = None) -> None:
        self.speakers[topic.split("/")[-2]].inbox.append(json.loads(payload))

    def deliver(self) -> None:
        """The broker hands queued commands to online speakers; their acks reach the hub."""
        for sp in self.speakers.values():
            if sp.online:
                cmds, sp.inbox = sp.inbox, []
                for cmd in cmds:
                    self.acks += [(sp.id, c, s) for c, s in sp.take(cmd, self.clock.now())]
        acks, self.acks = self.acks, []
        for dev, cid, state in acks:
            self.svc.on_ack(dev, json.dumps({"id": cid, "state": state}).encode(), self.clock.now())

    def do(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == "create":
            _, priority, villages = op
            self.svc.create(BroadcastSpec(title="t", media={"type": "tts", "text": "x"},
                                          targets=Targets(villages=villages), priority=priority,
                                          valid_for_s=600), "op")
        elif kind == "tick":
            self.svc.tick()
        elif kind == "deliver":
            self.deliver()
        elif kind == "finish":
            sp = self.speakers[op[1]]
            if sp.online and sp.current is not None:
                self.acks.append((sp.id, sp.current["id"], "done"))
                sp.seen[sp.current["id"]] = "done"
                sp.current = None
        elif kind == "advance":
            self.clock.advance(op[1])
        elif kind == "toggle":
            sp = self.speakers[op[1]]
            sp.online = not sp.online
            self.svc.on_presence(sp.id, sp.online, self.clock.now())


ops = st.one_of(
    st.tuples(st.just("create"), st.integers(0, 9),
              st.sampled_from([("v01",), ("v02",), ("v01", "v02")])),
    st.tuples(st.just("tick")),
    st.tuples(st.just("deliver")),
    st.tuples(st.just("finish"), st.sampled_from(["s1", "s2", "s3"])),
    st.tuples(st.just("advance"), st.floats(0, 120)),
    st.tuples(st.just("toggle"), st.sampled_from(["s1", "s2", "s3"])),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(ops, max_size=40))
def test_hub_never_sends_a_play_the_speaker_must_reject_nor_one_occurrence_twice(
        tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[Any, ...]]) -> None:
    world = World(tmp_path_factory.mktemp("prop"))
    for step in steps:
        world.do(step)
        world.deliver()  # acks flow back before the clock can pass an ack timeout
    world.svc.tick()
    world.deliver()
    for sp in world.speakers.values():
        assert sp.rejected_busy == [], f"{sp.id} was sent plays it had to reject"
        assert len(sp.executed) == len(set(sp.executed))
    seen: set[tuple[str, str]] = set()
    for cid in (c for sp in world.speakers.values() for c in sp.executed):
        d = world.svc.store.get_delivery(cid)
        assert d is not None and (d.occurrence_id, d.device_id) not in seen
        seen.add((d.occurrence_id, d.device_id))
    world.svc.stop()
