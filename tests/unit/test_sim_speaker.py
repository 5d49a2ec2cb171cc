"""The simulated speaker's player decides like firmware (PROTOCOL §6): pure, no broker."""

from __future__ import annotations

from typing import Any

import pytest

from device_sim.speaker import Ack, SpeakerPlayer, media_duration

pytestmark = pytest.mark.unit
T0 = 1_764_400_000.0


def play(cmd_id: str, priority: int = 3, text: str = "天干物燥，小心火烛。", **extra: Any) -> dict[str, Any]:
    return {"id": cmd_id, "action": "play", "ts": T0, "expires_at": T0 + 60, "broadcast_id": f"b-{cmd_id}",
            "priority": priority, "media": {"type": "tts", "text": text, "lang": "zh"},
            "volume": 70, "repeat": 1, **extra}


def states(acks: list[Ack]) -> list[tuple[str, str]]:
    return [(a.cmd_id, a.state) for a in acks]


def test_play_acks_received_then_playing_then_done_when_its_time_is_up() -> None:
    p = SpeakerPlayer()
    assert states(p.handle(play("c1"), T0)) == [("c1", "received"), ("c1", "playing")]
    assert p.state == "playing" and p.heartbeat_state()["playing"] == "c1"
    assert p.heartbeat_state()["volume"] == 70
    assert p.tick(T0 + 1) == []
    assert states(p.tick(T0 + 100)) == [("c1", "done")]
    assert p.state == "idle" and p.played[0].outcome == "done"


def test_tts_duration_follows_text_length_and_repeat() -> None:
    short = media_duration({"type": "tts", "text": "小心火烛"})
    long = media_duration({"type": "tts", "text": "小心火烛" * 10})
    assert short is not None and long is not None and long > short
    assert media_duration({"type": "tts", "text": "小心火烛" * 10}, repeat=2) == pytest.approx(2 * long)
    assert media_duration({"type": "audio", "url": "http://x/a.mp3", "duration_s": 30}) == 30
    assert media_duration({"type": "audio", "duration_s": 30}) is None
    assert media_duration({"type": "tts", "text": ""}) is None


def test_higher_priority_preempts_and_the_old_play_is_acked_preempted() -> None:
    p = SpeakerPlayer()
    p.handle(play("low", priority=3), T0)
    acks = p.handle(play("high", priority=8), T0 + 1)
    assert states(acks) == [("low", "preempted"), ("high", "received"), ("high", "playing")]
    assert p.current is not None and p.current.cmd_id == "high"
    assert p.played[0].cmd_id == "low" and p.played[0].outcome == "preempted"


@pytest.mark.parametrize("priority", [3, 2, 0])
def test_equal_or_lower_priority_is_rejected_busy(priority: int) -> None:
    p = SpeakerPlayer()
    p.handle(play("cur", priority=3), T0)
    acks = p.handle(play("other", priority=priority), T0 + 1)
    assert acks == [Ack("other", "rejected", "busy")]
    assert p.current is not None and p.current.cmd_id == "cur"


def test_expired_command_is_acked_expired_and_not_played() -> None:
    p = SpeakerPlayer()
    assert states(p.handle(play("old", expires_at=T0 - 1), T0)) == [("old", "expired")]
    assert p.current is None and p.executed == 1


def test_redelivered_command_is_acked_again_not_played_again() -> None:
    p = SpeakerPlayer()
    p.handle(play("c1"), T0)
    again = p.handle(play("c1"), T0 + 1)
    assert states(again) == [("c1", "playing")]
    assert p.executed == 1
    p.tick(T0 + 1000)
    assert states(p.handle(play("c1"), T0 + 1001)) == [("c1", "done")]
    assert len(p.played) == 1 and p.current is None


def test_stop_ends_the_current_play_and_acks_both() -> None:
    p = SpeakerPlayer()
    p.handle(play("c1"), T0)
    acks = p.handle({"id": "s1", "action": "stop", "ts": T0, "expires_at": T0 + 60}, T0 + 2)
    assert states(acks) == [("c1", "done"), ("s1", "done")]
    assert p.current is None


def test_stop_of_another_broadcast_leaves_the_current_play() -> None:
    p = SpeakerPlayer()
    p.handle(play("c1"), T0)
    acks = p.handle({"id": "s1", "action": "stop", "broadcast_id": "nope", "expires_at": T0 + 60}, T0)
    assert states(acks) == [("s1", "done")]
    assert p.current is not None


def test_set_volume_changes_the_reported_volume_and_rejects_out_of_range() -> None:
    p = SpeakerPlayer()
    assert states(p.handle({"id": "v1", "action": "set_volume", "volume": 35}, T0)) == [("v1", "done")]
    assert p.heartbeat_state()["volume"] == 35
    assert p.handle({"id": "v2", "action": "set_volume", "volume": 101}, T0)[0].state == "rejected"
    assert p.handle({"id": "v3", "action": "set_volume", "volume": True}, T0)[0].state == "rejected"


def test_unknown_action_and_bad_play_are_rejected_with_a_reason() -> None:
    p = SpeakerPlayer()
    a = p.handle({"id": "x", "action": "dance"}, T0)[0]
    assert a.state == "rejected" and a.reason and "dance" in a.reason
    assert p.handle(play("y", priority=12), T0)[0].state == "rejected"
    assert p.handle({"id": "z", "action": "play", "media": {"type": "video"}}, T0)[0].state == "rejected"


def test_command_without_usable_id_gets_no_ack() -> None:
    assert SpeakerPlayer().handle({"action": "stop"}, T0) == []
    assert SpeakerPlayer().handle({"id": "x" * 65, "action": "stop"}, T0) == []


def test_speaker_fault_fails_the_current_play_and_new_ones() -> None:
    p = SpeakerPlayer()
    p.handle(play("c1"), T0)
    assert states(p.set_fault(True, T0 + 1)) == [("c1", "failed")]
    assert p.state == "fault"
    assert states(p.handle(play("c2"), T0 + 2)) == [("c2", "received"), ("c2", "failed")]
    p.set_fault(False, T0 + 3)
    assert p.state == "idle"
