"""hub.ingest.pipeline.Ingest with fakes (no servers): handlers return points, effects and
rejections; the dispatcher applies the effects in order and counts what was accepted/rejected."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

from hub import metrics
from hub.devices import handlers as h
from hub.devices.livestate import LiveState
from hub.ingest.pipeline import Ingest
from hub.messages import InboundMessage, Rejection
from hub.registry.model import Device

T0 = 1_780_000_000.0


@dataclass
class FakeRegistry:
    devices: dict[str, Device] = field(default_factory=dict)

    def get(self, device_id: str) -> Device | None:
        return self.devices.get(device_id)


@dataclass
class FakeAlerts:
    calls: list[tuple[str, str]] = field(default_factory=list)

    def raise_alert(self, key: str, **kw: Any) -> None:
        self.calls.append(("raise", key))

    def clear_alert(self, key: str, ts: float) -> None:
        self.calls.append(("clear", key))


@dataclass
class FakeBus:
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def publish(self, type: str, data: dict[str, Any], ts: float | None = None) -> None:
        self.events.append((type, data))


@dataclass
class FakeBroadcasts:
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def on_speaker_heartbeat(self, device_id: str, state: str | None, playing: str | None, ts: float) -> None:
        self.calls.append(("speaker", device_id, state, playing))

    def on_presence(self, device_id: str, online: bool, ts: float) -> None:
        self.calls.append(("presence", device_id, online))

    def on_ack(self, device_id: str, payload: bytes, received_at: float) -> bool:
        self.calls.append(("ack", device_id))
        return True


@dataclass
class FakeRejections:
    seen: list[Rejection] = field(default_factory=list)

    def reject(self, r: Rejection) -> None:
        self.seen.append(r)


class FakeLive(LiveState):
    """The real live state, counting how often its lock is taken for heartbeats."""

    def __init__(self) -> None:
        super().__init__()
        self.heartbeat_calls = 0

    def on_heartbeats(self, batch: list[Any]) -> list[Any]:
        self.heartbeat_calls += 1
        return super().on_heartbeats(batch)


def make() -> tuple[Ingest, SimpleNamespace, FakeRejections]:
    s = SimpleNamespace(
        settings=SimpleNamespace(devices=SimpleNamespace(clock_skew_s=300.0)),
        registry=FakeRegistry({"cam-1": Device("cam-1", "camera", "东门摄像头", village="v1", group="g1")}),
        live=FakeLive(), alerts=FakeAlerts(), bus=FakeBus(), broadcasts=FakeBroadcasts(),
        lights=None, snapshots=None,
    )
    noted: list[tuple[str, str]] = []
    rejections = FakeRejections()
    ingest = Ingest(cast(Any, s), note_unregistered=lambda d, k: noted.append((d, k)),
                    rejections=cast(Any, rejections))
    s.noted = noted
    return ingest, s, rejections


def msg(device: str, channel: str, payload: bytes | dict[str, Any], *, retain: bool = False) -> InboundMessage:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return InboundMessage(f"vhub/v1/dev/{device}/{channel}", device, channel, body, 1, retain, 1, T0)


def accepted(kind: str) -> float:
    return float(metrics.messages_accepted.labels(kind=kind)._value.get())


def test_heartbeat_handler_returns_its_point_and_effects_without_applying_them() -> None:
    ingest, s, _ = make()
    out = h.HandlerResult()
    ingest.handle(msg("spk-1", "heartbeat", {"kind": "speaker", "seq": 1, "state": "playing",
                                             "playing": "b-1"}), out)
    assert len(out.points) == 1 and out.points[0].startswith("heartbeat,device=spk-1")
    assert [type(e).__name__ for e in out.effects] == ["Heartbeat", "SpeakerState"]
    assert out.accepted == {"heartbeat": 1}
    assert s.live.status("spk-1") == "unknown"  # nothing applied yet
    assert s.broadcasts.calls == []


def test_a_batch_applies_heartbeats_under_one_lock_in_order_with_presence_effects() -> None:
    ingest, s, _ = make()
    before = accepted("heartbeat")
    lines = ingest.handle_batch([
        msg("cam-1", "heartbeat", {"kind": "camera", "seq": 1}),
        msg("spk-1", "heartbeat", {"kind": "speaker", "seq": 4, "state": "idle"}),
        msg("cam-1", "heartbeat", {"kind": "camera", "seq": 3}),  # seq 2 lost
    ])
    assert s.live.heartbeat_calls == 1
    assert s.live.status("cam-1") == "online" and s.live.status("spk-1") == "online"
    assert sum(line.startswith("heartbeat,") for line in lines) == 3
    presence = [line for line in lines if line.startswith("presence,")]
    assert len(presence) == 2 and "village=v1" in presence[0]  # tags of the registered camera
    assert s.alerts.calls == [("clear", "offline:cam-1"), ("clear", "offline:spk-1")]
    assert [e[1]["device"] for e in s.bus.events if e[0] == "presence"] == ["cam-1", "spk-1"]
    # the speaker's presence reaches the broadcast service before its state
    assert [c for c in s.broadcasts.calls if c[1] == "spk-1"] == [("presence", "spk-1", True),
                                                                  ("speaker", "spk-1", "idle", None)]
    assert s.live.get("cam-1")[0].lost == 1  # type: ignore[union-attr]
    assert accepted("heartbeat") - before == 3
    assert s.noted == [("spk-1", "speaker")]  # unregistered: noted, never written here


def test_a_status_between_heartbeats_is_applied_in_order() -> None:
    ingest, s, _ = make()
    ingest.handle_batch([
        msg("cam-1", "heartbeat", {"kind": "camera"}),
        msg("cam-1", "status", b"offline"),
    ])
    assert s.live.status("cam-1") == "offline"
    assert s.alerts.calls == [("clear", "offline:cam-1"), ("raise", "offline:cam-1")]
    assert s.broadcasts.calls == [("presence", "cam-1", True), ("presence", "cam-1", False)]


def test_rejections_are_returned_and_counted_by_the_dispatcher() -> None:
    ingest, _, rejections = make()
    lines = ingest.handle_batch([
        msg("cam-1", "status", b"maybe"),
        msg("cam-1", "heartbeat", {"kind": "camera", "fps": "fast"}),
        msg("cam-1", "heartbeat", {"kind": "camera"}, retain=True),
        msg("cam-1", "event", b"[1]"),
        msg("cam-1", "nonsense", b""),
    ])
    got = [(r.kind, r.reason, r.field) for r in rejections.seen]
    assert got == [("status", "bad_value", ""), ("heartbeat", "wrong_type", "fps"),
                   ("heartbeat", "retained", ""), ("event", "not_object", ""), ("topic", "bad_channel", "")]
    # the heartbeat with one bad field is kept (and brings the camera online)
    assert [line.split(",")[0] for line in lines] == ["heartbeat", "presence"]


def test_an_alerting_event_raises_its_alert_and_is_published() -> None:
    ingest, s, _ = make()
    lines = ingest.handle_batch([msg("cam-1", "event", {"type": "tamper", "detail": {"x": 1}})])
    assert lines[0].startswith("event,device=cam-1")
    assert s.alerts.calls == [("raise", "tamper:cam-1")]
    assert s.bus.events[-1][0] == "device_event"
    assert s.live.get("cam-1")[0] is not None  # touched


def test_an_ack_goes_to_the_broadcast_service_and_a_snapshot_without_service_is_rejected() -> None:
    ingest, s, rejections = make()
    ingest.handle_batch([msg("spk-1", "ack", {"cmd_id": "b-1"}), msg("cam-1", "snapshot", b"\xff\xd8")])
    assert ("ack", "spk-1") in s.broadcasts.calls
    assert [(r.kind, r.reason) for r in rejections.seen] == [("snapshot", "no_snapshot_service")]


def test_a_failing_effect_is_logged_and_the_batch_goes_on() -> None:
    ingest, s, _ = make()

    def broken(*a: Any, **kw: Any) -> None:
        raise RuntimeError("boom")

    s.bus.publish = broken
    ingest.handle_batch([msg("cam-1", "event", {"type": "motion"}),
                         msg("cam-1", "status", b"offline")])
    assert s.live.status("cam-1") == "offline"


def test_sweep_returns_presence_points_of_timed_out_devices() -> None:
    ingest, s, _ = make()
    ingest.handle_batch([msg("cam-1", "heartbeat", {"kind": "camera", "interval_s": 10})])
    lines = ingest.sweep(T0 + 1000)
    assert len(lines) == 1 and lines[0].startswith("presence,") and "online=false" in lines[0]
    assert s.alerts.calls[-1] == ("raise", "offline:cam-1")
