"""Commands sent by a plain MQTT client to simulated devices, and the acks they send back (§6)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from device_sim import DeviceSpec
from tests.component.test_sim_support import Recorder, recording, running_fleet
from tests.servers import MosquittoServer

pytestmark = pytest.mark.component


def play(cmd_id: str, priority: int, text: str = "天干物燥，小心火烛。" * 4, **extra: Any) -> dict[str, Any]:
    now = time.time()
    return {"id": cmd_id, "action": "play", "ts": now, "expires_at": now + 60, "broadcast_id": f"b-{cmd_id}",
            "priority": priority, "media": {"type": "tts", "text": text, "lang": "zh"}, "volume": 70,
            "repeat": 1, **extra}


def acks(rec: Recorder, dev: str) -> list[tuple[str, str, str | None]]:
    return [(m.json()["id"], m.json()["state"], m.json().get("reason")) for m in rec.of(dev, "ack")]


def wait_acks(rec: Recorder, dev: str, n: int) -> list[tuple[str, str, str | None]]:
    rec.wait(lambda g: len(g) >= n, device=dev, channel="ack")
    return acks(rec, dev)


def test_play_is_acked_received_playing_done_and_reported_in_heartbeats(mosquitto: MosquittoServer) -> None:
    dev = "s-cmd-play"
    with recording(mosquitto.port) as rec, running_fleet(mosquitto.url, [DeviceSpec(dev, "speaker")]) as fleet:
        rec.send(dev, play("p1", 3, text="小心火烛"))  # 4 CJK chars → 1 s
        assert wait_acks(rec, dev, 2) == [("p1", "received", None), ("p1", "playing", None)]
        hb = rec.wait(lambda g: any(m.json().get("playing") == "p1" for m in g), device=dev, channel="heartbeat")
        playing = next(m.json() for m in hb if m.json().get("playing") == "p1")
        assert playing["state"] == "playing" and playing["volume"] == 70
        assert wait_acks(rec, dev, 3)[2] == ("p1", "done", None)
        for m in rec.of(dev, "ack"):
            assert m.qos == 1 and not m.retain and isinstance(m.json()["ts"], float)
        [record] = fleet.speaker(dev).player.played
        assert record.outcome == "done" and 0.8 < record.ended - record.started < 3


def test_higher_priority_preempts_and_equal_priority_is_rejected_busy(mosquitto: MosquittoServer) -> None:
    dev = "s-cmd-preempt"
    with recording(mosquitto.port) as rec, running_fleet(mosquitto.url, [DeviceSpec(dev, "speaker")]):
        rec.send(dev, play("low", 3))
        wait_acks(rec, dev, 2)
        rec.send(dev, play("high", 8))
        assert wait_acks(rec, dev, 5)[2:] == [("low", "preempted", "preempted by high"),
                                               ("high", "received", None), ("high", "playing", None)]
        rec.send(dev, play("same", 8))
        assert wait_acks(rec, dev, 6)[5] == ("same", "rejected", "busy")


def test_expired_command_is_acked_expired_and_not_played(mosquitto: MosquittoServer) -> None:
    dev = "s-cmd-expired"
    with recording(mosquitto.port) as rec, running_fleet(mosquitto.url, [DeviceSpec(dev, "speaker")]) as fleet:
        rec.send(dev, play("late", 3, expires_at=time.time() - 5))
        assert wait_acks(rec, dev, 1) == [("late", "expired", None)]
        assert fleet.speaker(dev).player.played == [] and fleet.speaker(dev).player.current is None


def test_redelivered_command_is_acked_again_not_played_again(mosquitto: MosquittoServer) -> None:
    dev = "s-cmd-redeliver"
    with recording(mosquitto.port) as rec, running_fleet(mosquitto.url, [DeviceSpec(dev, "speaker")]) as fleet:
        cmd = play("once", 3)
        rec.send(dev, cmd)
        wait_acks(rec, dev, 2)
        rec.send(dev, cmd)
        assert wait_acks(rec, dev, 3)[2] == ("once", "playing", "duplicate")
        player = fleet.speaker(dev).player
        assert player.executed == 1 and player.current is not None and player.current.cmd_id == "once"


def test_stop_and_set_volume_are_acked_done(mosquitto: MosquittoServer) -> None:
    dev = "s-cmd-stop"
    with recording(mosquitto.port) as rec, running_fleet(mosquitto.url, [DeviceSpec(dev, "speaker")]) as fleet:
        rec.send(dev, play("p", 3))
        wait_acks(rec, dev, 2)
        now = time.time()
        rec.send(dev, {"id": "st", "action": "stop", "broadcast_id": "b-p", "ts": now, "expires_at": now + 60})
        assert wait_acks(rec, dev, 4)[2:] == [("p", "done", "stopped"), ("st", "done", None)]
        rec.send(dev, {"id": "vol", "action": "set_volume", "volume": 15, "ts": now, "expires_at": now + 60})
        assert wait_acks(rec, dev, 5)[4] == ("vol", "done", None)
        assert fleet.speaker(dev).player.volume == 15


def test_camera_answers_a_snapshot_command_with_cmd_id_user_property(mosquitto: MosquittoServer) -> None:
    dev = "c-cmd-snap"
    with recording(mosquitto.port) as rec, running_fleet(mosquitto.url, [DeviceSpec(dev, "camera")]):
        now = time.time()
        rec.send(dev, {"id": "snap-1", "action": "snapshot", "ts": now, "expires_at": now + 30})
        [snap] = rec.wait(lambda g: len(g) >= 1, device=dev, channel="snapshot")
        assert snap.payload[:2] == b"\xff\xd8"
        assert snap.user["cmd_id"] == "snap-1" and snap.user["trigger"] == "command"
        assert wait_acks(rec, dev, 2) == [("snap-1", "received", None), ("snap-1", "done", None)]
        rec.send(dev, {"id": "snap-1", "action": "snapshot", "ts": now, "expires_at": now + 30})
        assert wait_acks(rec, dev, 3)[2] == ("snap-1", "done", "duplicate")
        # a marker: a new command handled after the duplicate; once its snapshot is here, a
        # snapshot the duplicate wrongly caused would be here too
        rec.send(dev, {"id": "snap-2", "action": "snapshot", "ts": now, "expires_at": now + 30})
        rec.wait(lambda g: any(m.user.get("cmd_id") == "snap-2" for m in g), device=dev, channel="snapshot")
        assert [m.user.get("cmd_id") for m in rec.of(dev, "snapshot")] == ["snap-1", "snap-2"]


def test_malformed_command_is_ignored_and_counted(mosquitto: MosquittoServer) -> None:
    dev = "s-cmd-bad"
    with recording(mosquitto.port) as rec, running_fleet(mosquitto.url, [DeviceSpec(dev, "speaker")]) as fleet:
        rec.client.publish(f"vhub/v1/dev/{dev}/cmd", b"{nope", qos=1).wait_for_publish(5)
        rec.send(dev, {"id": "after", "action": "set_volume", "volume": 5})
        assert wait_acks(rec, dev, 1) == [("after", "done", None)]
        assert fleet.stats.bad_commands == 1


def test_a_command_sent_as_soon_as_the_fleet_is_connected_reaches_every_device(mosquitto: MosquittoServer) -> None:
    """`wait_connected` returns once each device's command subscription is acknowledged, not at
    its CONNACK: a command published in between reached no one (a flaky test on a busy machine)."""
    devs = [f"s-cmd-ready-{i}" for i in range(20)]
    with recording(mosquitto.port) as rec, running_fleet(mosquitto.url, [DeviceSpec(d, "speaker") for d in devs]) as fleet:
        assert all(fleet.device(d).subscribed.is_set() for d in devs)
        for d in devs:
            rec.send(d, play(f"c-{d}", 3, text="小心"))
        for d in devs:
            assert wait_acks(rec, d, 1)[0] == (f"c-{d}", "received", None)
