"""BroadcastService logic with a ManualClock and an in-process publisher (no servers)."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hub import metrics
from hub.broadcasts import BroadcastConfig, BroadcastService, BroadcastSpec, SpeakerRef, Targets
from hub.broadcasts.dispatch import new_command_id
from hub.broadcasts.model import NullAlerts
from hub.clock import ManualClock
from hub.messages import Point

pytestmark = pytest.mark.unit

SH = ZoneInfo("Asia/Shanghai")
NOON = datetime(2026, 12, 1, 12, 0, tzinfo=SH).timestamp()
SPEAKERS = [SpeakerRef("s1", "v01", "g1"), SpeakerRef("s2", "v01", "g2"),
            SpeakerRef("s3", "v02", "g3")]


class Rig:
    """The service with recording stand-ins for its collaborators."""

    def __init__(self, tmp: Path, clock: ManualClock | None = None, **cfg: Any) -> None:
        self.tmp = tmp
        self.clock = clock or ManualClock(NOON)
        self.online: set[str] = {s.id for s in SPEAKERS}
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.points: list[Point] = []
        self.alerts = NullAlerts()
        self.cfg = BroadcastConfig(**{"flush_interval_s": 0.0, **cfg})
        self.svc = self.build()

    def build(self) -> BroadcastService:
        return BroadcastService(
            self.tmp / "broadcasts.db", self.clock, lambda: list(SPEAKERS),
            lambda d: d in self.online, self.publish, emit_points=self.points.extend,
            alerts=self.alerts, config=self.cfg)

    def restart(self) -> None:
        self.svc.stop()
        self.svc = self.build()
        self.svc.start(thread=False)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
                properties: dict[str, str] | None = None) -> None:
        assert qos == 1 and not retain
        self.sent.append((topic.split("/")[-2], json.loads(payload)))

    def plays(self, device: str) -> list[dict[str, Any]]:
        return [c for d, c in self.sent if d == device and c["action"] == "play"]

    def ack(self, device: str, cid: str, *states: str) -> None:
        for s in states:
            self.svc.on_ack(device, json.dumps({"id": cid, "state": s}).encode(), self.clock.now())

    def states(self, bid: str) -> dict[str, str]:
        occ = self.svc.get(bid)["occurrences"][-1]
        return {d["device"]: d["state"] for d in occ["deliveries"]}


def spec(priority: int = 3, villages: tuple[str, ...] = ("v01",), **kw: Any) -> BroadcastSpec:
    return BroadcastSpec(title="防火", media={"type": "tts", "text": "小心火烛", "lang": "zh"},
                         targets=Targets(villages=villages), priority=priority, **kw)


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


def test_routine_broadcast_to_one_village_sends_one_play_per_speaker(rig: Rig) -> None:
    bid = rig.svc.create(spec(), "op")
    rig.svc.tick()
    assert sorted(d for d, _ in rig.sent) == ["s1", "s2"]
    play = rig.plays("s1")[0]
    assert play["broadcast_id"] == bid and play["priority"] == 3
    assert play["expires_at"] == NOON + 1800 and play["media"]["type"] == "tts"
    assert rig.plays("s1")[0]["id"] != rig.plays("s2")[0]["id"]
    rig.ack("s1", play["id"], "received", "playing", "done")
    assert rig.states(bid) == {"s1": "done", "s2": "sent"}
    summary = rig.svc.get(bid)["occurrences"][0]["summary"]
    assert summary["by_village"] == {"v01": {"done": 1, "total": 2}}
    assert [p.fields["state"] for p in rig.points if p.tags["device"] == "s1"] == [
        "sent", "received", "playing", "done"]
    s1_point = next(p for p in rig.points if p.tags["device"] == "s1")
    assert s1_point.tags == {"device": "s1", "village": "v01", "village_group": "g1",
                                  "priority": "3"}


def test_targets_by_group_device_and_all_are_resolved_at_fire_time(rig: Rig) -> None:
    rig.svc.create(BroadcastSpec(title="t", media={"type": "tts", "text": "x"},
                                 targets=Targets(groups=("g3",), devices=("s1", "cam9"))), "op")
    rig.svc.tick()
    assert sorted(d for d, _ in rig.sent) == ["s1", "s3"]


def test_emergency_preempts_routine_which_ends_preempted(rig: Rig) -> None:
    routine = rig.svc.create(spec(), "op")
    rig.svc.tick()
    r1 = rig.plays("s1")[0]["id"]
    rig.ack("s1", r1, "received", "playing")
    emergency = rig.svc.create(spec(priority=9, villages=("v01", "v02")), "admin")
    rig.clock.advance(1)
    rig.svc.tick()
    e1 = rig.plays("s1")[1]
    assert e1["priority"] == 9 and e1["broadcast_id"] == emergency
    rig.ack("s1", r1, "preempted")
    rig.ack("s1", e1["id"], "received", "playing", "done")
    assert rig.states(routine)["s1"] == "preempted"
    assert rig.states(emergency)["s1"] == "done"


def test_lower_priority_waits_for_the_speaker_and_the_conflict_is_visible(rig: Rig) -> None:
    first = rig.svc.create(spec(priority=5, villages=("v02",)), "op")
    rig.svc.tick()
    c1 = rig.plays("s3")[0]["id"]
    rig.ack("s3", c1, "received", "playing")
    second = rig.svc.create(spec(priority=5, villages=("v02",)), "op")
    rig.svc.tick()
    assert len(rig.plays("s3")) == 1
    view = rig.svc.get(second)
    assert view["conflicts"] == [{"device": "s3", "occurrence_id": view["occurrences"][0]["id"],
                                  "waiting_for": first}]
    rig.ack("s3", c1, "done")
    assert [p["broadcast_id"] for p in rig.plays("s3")] == [first, second]


def test_offline_speaker_is_served_once_when_it_reconnects(rig: Rig) -> None:
    rig.online.discard("s1")
    bid = rig.svc.create(spec(), "op")
    rig.svc.tick()
    assert rig.states(bid)["s1"] == "offline" and rig.plays("s1") == []
    rig.clock.advance(300)
    rig.online.add("s1")
    rig.svc.on_presence("s1", True, rig.clock.now())
    rig.svc.on_presence("s1", True, rig.clock.now())
    rig.svc.tick()
    assert len(rig.plays("s1")) == 1
    assert rig.states(bid)["s1"] == "sent"


def test_offline_speaker_back_after_expiry_gets_expired_not_played(rig: Rig) -> None:
    rig.online.discard("s1")
    bid = rig.svc.create(spec(valid_for_s=600), "op")
    rig.svc.tick()
    rig.clock.advance(601)
    rig.svc.tick()
    rig.online.add("s1")
    rig.svc.on_presence("s1", True, rig.clock.now())
    assert rig.plays("s1") == [] and rig.states(bid)["s1"] == "expired"


def test_play_without_received_ack_is_resent_with_the_same_id(rig: Rig) -> None:
    rig.svc.create(spec(villages=("v02",)), "op")
    rig.svc.tick()
    rig.clock.advance(rig.cfg.ack_timeout_s)
    rig.svc.tick()
    ids = [p["id"] for p in rig.plays("s3")]
    assert len(ids) == 2 and ids[0] == ids[1]
    rig.ack("s3", ids[0], "received")
    rig.clock.advance(rig.cfg.ack_timeout_s * 3)
    rig.svc.tick()
    assert len(rig.plays("s3")) == 2


def test_command_ids_are_unique_hex_and_later_ones_sort_after_earlier_ones() -> None:
    first = [new_command_id() for _ in range(1000)]
    time.sleep(0.002)
    later = [new_command_id() for _ in range(1000)]
    ids = first + later
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)  # PROTOCOL §6: ≤ 64 characters
    assert max(first) < min(later)


def test_plays_resends_and_final_states_are_counted_in_the_metrics(rig: Rig) -> None:
    def count(name: str, label: str, value: str) -> float:
        return metrics.REGISTRY.get_sample_value(name, {label: value}) or 0.0

    def counts() -> tuple[float, float, float]:
        return (count("vh_broadcast_commands_total", "action", "play"),
                count("vh_broadcast_commands_total", "action", "resend"),
                count("vh_broadcast_deliveries_total", "state", "done"))

    before = counts()
    rig.svc.create(spec(villages=("v01", "v02")), "op")
    rig.svc.tick()
    assert counts() == (before[0] + 3, before[1], before[2])
    rig.clock.advance(rig.cfg.ack_timeout_s)
    rig.svc.tick()
    assert counts() == (before[0] + 3, before[1] + 3, before[2])
    for device in ("s1", "s2"):
        rig.ack(device, rig.plays(device)[0]["id"], "received", "done")
    rig.svc.flush()
    assert counts() == (before[0] + 3, before[1] + 3, before[2] + 2)


def test_redelivered_acks_do_not_move_a_finished_delivery(rig: Rig) -> None:
    bid = rig.svc.create(spec(villages=("v02",)), "op")
    rig.svc.tick()
    cid = rig.plays("s3")[0]["id"]
    rig.ack("s3", cid, "received", "playing", "done", "received", "playing")
    assert rig.states(bid)["s3"] == "done"


def test_broadcast_scheduled_before_restart_fires_once_after_it(rig: Rig) -> None:
    at = datetime(2026, 12, 1, 12, 30, tzinfo=SH)
    bid = rig.svc.create(spec(start=at.isoformat()), "op")
    rig.svc.tick()
    assert rig.sent == []
    rig.restart()
    rig.clock.set(at.timestamp() + 5)
    rig.svc.tick()
    rig.restart()
    rig.svc.tick()
    assert len(rig.plays("s1")) == 1 and len(rig.svc.get(bid)["occurrences"]) == 1


def test_occurrence_missed_beyond_grace_is_recorded_missed(rig: Rig) -> None:
    at = datetime(2026, 12, 1, 12, 30, tzinfo=SH)
    bid = rig.svc.create(spec(start=at.isoformat(), rrule="FREQ=DAILY;COUNT=2"), "op")
    rig.svc.stop()
    rig.clock.set(at.timestamp() + 601)
    rig.svc = rig.build()
    rig.svc.start(thread=False)
    view = rig.svc.get(bid)
    assert [o["status"] for o in view["occurrences"]] == ["missed"]
    assert rig.sent == [] and view["next_at"] == at.timestamp() + 86400


def test_occurrence_late_within_grace_still_fires(rig: Rig) -> None:
    at = datetime(2026, 12, 1, 12, 30, tzinfo=SH)
    rig.svc.create(spec(start=at.isoformat()), "op")
    rig.clock.set(at.timestamp() + 599)
    rig.restart()
    assert len(rig.plays("s1")) == 1


def test_routine_at_night_is_postponed_and_emergency_is_not(tmp_path: Path) -> None:
    night = datetime(2026, 12, 1, 23, 0, tzinfo=SH).timestamp()
    rig = Rig(tmp_path, ManualClock(night))
    routine = rig.svc.create(spec(), "op")
    rig.svc.create(spec(priority=8, villages=("v02",)), "admin")
    rig.svc.tick()
    assert rig.plays("s1") == [] and len(rig.plays("s3")) == 1
    six = datetime(2026, 12, 2, 6, 0, tzinfo=SH).timestamp()
    assert rig.svc.get(routine)["occurrences"][0]["deliveries"][0]["due_at"] == six
    rig.clock.set(six)
    rig.svc.tick()
    assert len(rig.plays("s1")) == 1 and rig.plays("s1")[0]["expires_at"] == six + 1800


def test_skip_policy_records_the_night_delivery_expired(tmp_path: Path) -> None:
    rig = Rig(tmp_path, ManualClock(datetime(2026, 12, 1, 23, 0, tzinfo=SH).timestamp()))
    bid = rig.svc.create(spec(quiet_hours="skip"), "op")
    rig.svc.tick()
    assert rig.sent == [] and set(rig.states(bid).values()) == {"expired"}


def test_village_quiet_hours_override_the_default(rig: Rig) -> None:
    rig.svc.set_quiet_hours("v01", "11:00", "13:00", "admin")
    rig.svc.create(spec(villages=("v01", "v02")), "op")
    rig.svc.tick()
    assert rig.plays("s1") == [] and len(rig.plays("s3")) == 1
    assert rig.svc.quiet_hours()["villages"] == {"v01": {"start": "11:00", "end": "13:00"}}


def test_cancel_stops_where_it_plays_and_drops_future_occurrences(rig: Rig) -> None:
    bid = rig.svc.create(spec(rrule="FREQ=HOURLY;COUNT=5"), "op")
    rig.svc.tick()
    c1 = rig.plays("s1")[0]["id"]
    rig.ack("s1", c1, "received", "playing")
    assert rig.svc.cancel(bid, "op2") is True
    stops = [c for d, c in rig.sent if c["action"] == "stop"]
    assert sorted(d for d, c in rig.sent if c["action"] == "stop") == ["s1", "s2"]
    assert all(c["broadcast_id"] == bid for c in stops)
    rig.clock.advance(7200)
    rig.svc.tick()
    view = rig.svc.get(bid)
    assert view["status"] == "cancelled" and len(view["occurrences"]) == 1
    assert [a["action"] for a in view["audit"]] == ["create", "cancel"]
    assert view["audit"][1]["actor"] == "op2"


def test_emergency_not_reaching_a_speaker_raises_an_alert_cleared_on_delivery(rig: Rig) -> None:
    rig.online.discard("s3")
    bid = rig.svc.create(spec(priority=9, villages=("v02",)), "admin")
    rig.svc.tick()
    key = f"broadcast_undelivered:{bid}:s3"
    assert key in rig.alerts.raised
    rig.online.add("s3")
    rig.svc.on_presence("s3", True, rig.clock.now())
    rig.ack("s3", rig.plays("s3")[0]["id"], "received", "playing", "done")
    assert key not in rig.alerts.raised


def test_bad_and_foreign_acks_are_counted_by_reason(rig: Rig) -> None:
    def count(reason: str) -> float:
        return metrics.REGISTRY.get_sample_value(
            "vh_messages_rejected_total", {"kind": "ack", "reason": reason}) or 0.0

    before = (count("not_json"), count("unknown_command"), count("wrong_device"))
    rig.svc.create(spec(villages=("v02",)), "op")
    rig.svc.tick()
    cid = rig.plays("s3")[0]["id"]
    assert rig.svc.on_ack("s3", b"{", NOON) is False
    assert rig.svc.on_ack("s3", b'{"id": "nope", "state": "done"}', NOON) is False
    assert rig.svc.on_ack("s1", json.dumps({"id": cid, "state": "done"}).encode(), NOON) is False
    assert (count("not_json"), count("unknown_command"), count("wrong_device")) == tuple(
        b + 1 for b in before)
    assert rig.svc.on_ack("s3", json.dumps({"id": cid, "state": "done"}).encode(), NOON) is True


def test_calendar_lists_fired_and_lazily_expanded_occurrences(rig: Rig) -> None:
    bid = rig.svc.create(spec(rrule="FREQ=DAILY;COUNT=3"), "op")
    rig.svc.tick()
    items = rig.svc.calendar(NOON - 10, NOON + 10 * 86400)
    assert [(i["broadcast_id"], i["status"]) for i in items] == [
        (bid, "fired"), (bid, "scheduled"), (bid, "scheduled")]


def test_heartbeat_playing_and_idle_track_the_speaker(rig: Rig) -> None:
    bid = rig.svc.create(spec(villages=("v02",)), "op")
    rig.svc.tick()
    cid = rig.plays("s3")[0]["id"]
    rig.svc.on_speaker_heartbeat("s3", "playing", cid, NOON + 1)
    assert rig.states(bid)["s3"] == "playing"
    assert rig.svc.now_playing()[0]["broadcast_id"] == bid
    rig.svc.on_speaker_heartbeat("s3", "idle", None, NOON + 60)
    assert rig.states(bid)["s3"] == "done" and rig.svc.now_playing() == []


def test_play_stuck_without_final_ack_frees_the_speaker_for_the_next(rig: Rig) -> None:
    from hub.broadcasts.dispatch import PLAYING_TIMEOUT_S

    first = rig.svc.create(spec(villages=("v02",), valid_for_s=PLAYING_TIMEOUT_S * 2), "op")
    rig.svc.tick()
    rig.ack("s3", rig.plays("s3")[0]["id"], "received", "playing")
    rig.clock.advance(60)
    rig.svc.create(spec(villages=("v02",), valid_for_s=PLAYING_TIMEOUT_S * 2), "op")
    rig.svc.tick()
    assert len(rig.plays("s3")) == 1
    rig.clock.advance(PLAYING_TIMEOUT_S)
    rig.svc.tick()
    assert rig.states(first)["s3"] == "failed" and len(rig.plays("s3")) == 2


def test_only_the_latest_occurrences_list_each_speaker_older_ones_keep_their_summary(rig: Rig) -> None:
    bid = rig.svc.create(spec(rrule="FREQ=HOURLY;COUNT=3"), "op")
    rig.svc.tick()
    for p in rig.plays("s1") + rig.plays("s2"):
        rig.ack("s1" if p in rig.plays("s1") else "s2", p["id"], "done")
    rig.clock.advance(3600)
    rig.svc.tick()
    older, latest = rig.svc.get(bid, detailed=1)["occurrences"]
    assert older["deliveries"] == [] and older["deliveries_omitted"] is True
    assert latest["deliveries_omitted"] is False and older["summary"]["by_village"] == {
        "v01": {"done": 2, "total": 2}}
    assert {d["device"] for d in latest["deliveries"]} == {"s1", "s2"}
    assert latest["summary"]["by_state"] == {"sent": 2}


def test_a_publisher_failure_leaves_the_delivery_pending_and_the_next_tick_sends_it(
        rig: Rig) -> None:
    real = rig.publish
    calls = {"n": 0}

    def failing(*a: Any, **k: Any) -> None:
        calls["n"] += 1
        raise RuntimeError("MQTT client not started")

    rig.svc.dispatch._publish = failing  # the hub's publisher before MQTT is up
    bid = rig.svc.create(spec(villages=("v02",)), "op")
    with pytest.raises(RuntimeError):
        rig.svc.tick()
    assert calls["n"] == 1 and rig.states(bid) == {"s3": "pending"}
    rig.svc.dispatch._publish = real
    rig.svc.tick()
    assert len(rig.plays("s3")) == 1 and rig.states(bid) == {"s3": "sent"}



def test_summary_counts_each_step_when_several_changes_of_one_delivery_are_recorded_together(
    tmp_path: Path,
) -> None:
    """Acks can move a delivery pending → sent → received before the changes are flushed;
    the per-occurrence summary must count every step as it happened (never a negative state)."""
    from hub.broadcasts.dispatch import Change
    from hub.broadcasts.model import Delivery
    from hub.broadcasts.outcomes import Outcomes
    from hub.broadcasts.store import BroadcastStore

    class Alerts:
        def raise_alert(self, *a: object, **k: object) -> None: ...
        def clear_alert(self, *a: object, **k: object) -> None: ...

    points: list[Point] = []
    outcomes = Outcomes(BroadcastStore(tmp_path / "b.db"), emit_points=points.extend, alerts=Alerts(),
                        events=None)
    outcomes.fired("o1", 1)
    d = Delivery(command_id="c1", occurrence_id="o1", broadcast_id="b1", device_id="spk-1", village="v",
                 group="g", priority=3, state="received", due_at=0.0, expires_at=100.0, updated_at=0.0)
    outcomes.record([Change(d, "pending", 1.0, "sent"), Change(d, "sent", 2.0, "received")])
    counts = outcomes.counts("o1")
    assert {k: v for k, v in counts.items() if v} == {"received": 1}
    assert [p.fields["state"] for p in points] == ["sent", "received"]


def stored_states(rig: Rig) -> dict[str, str]:
    """The deliveries as the database has them, not flushed first (what a restart would find)."""
    return {d.device_id: d.state for d in rig.svc.store.open_deliveries()}


def test_a_plays_sent_step_is_written_with_the_speakers_received_ack_in_one_update(rig: Rig) -> None:
    rig.svc.create(spec(villages=("v02",)), "op")
    rig.svc.tick()
    assert stored_states(rig) == {"s3": "pending"}  # held: the ack usually follows at once
    updates: list[str] = []
    rig.svc.store._db.set_trace_callback(
        lambda sql: updates.append(sql) if sql.startswith("UPDATE deliveries") else None)
    rig.ack("s3", rig.plays("s3")[0]["id"], "received")
    assert stored_states(rig) == {"s3": "received"} and len(updates) == 1
    assert [p.fields["state"] for p in rig.points if p.measurement == "delivery"] == ["sent", "received"]


def test_a_held_sent_step_is_written_at_the_next_tick_when_no_ack_came(rig: Rig) -> None:
    rig.svc.create(spec(villages=("v02",)), "op")
    rig.svc.tick()
    assert stored_states(rig) == {"s3": "pending"} and rig.points == []
    rig.clock.advance(rig.cfg.tick_s)
    rig.svc.tick()
    assert stored_states(rig) == {"s3": "sent"}
    assert [p.fields["state"] for p in rig.points if p.measurement == "delivery"] == ["sent"]


def test_reads_and_a_clean_stop_write_the_held_sent_steps(rig: Rig) -> None:
    bid = rig.svc.create(spec(villages=("v02",)), "op")
    rig.svc.tick()
    assert rig.states(bid) == {"s3": "sent"} and stored_states(rig) == {"s3": "sent"}
    rig.svc.create(spec(villages=("v01",)), "op")
    rig.svc.tick()
    rig.svc.stop()
    rig.svc = rig.build()
    assert stored_states(rig) == {"s1": "sent", "s2": "sent", "s3": "sent"}


def test_a_play_held_when_the_hub_died_is_sent_again_with_the_same_id_after_the_restart(
        rig: Rig) -> None:
    bid = rig.svc.create(spec(villages=("v02",)), "op")
    rig.svc.tick()
    first = rig.plays("s3")[0]["id"]
    rig.svc = rig.build()  # no stop(): the process died before the next tick
    rig.svc.start(thread=False)
    assert [p["id"] for p in rig.plays("s3")] == [first, first]  # the speaker acts once per id
    rig.ack("s3", first, "received", "done")
    assert rig.states(bid) == {"s3": "done"}


def test_idle_heartbeats_of_speakers_without_a_broadcast_leave_no_state_behind(rig: Rig) -> None:
    for i in range(100):
        rig.svc.on_speaker_heartbeat(f"spk-{i}", "idle", None, NOON)
    assert rig.svc.dispatch.speakers == {}
    rig.svc.on_speaker_heartbeat("s1", "playing", "not-ours", NOON)  # a play the hub did not send
    assert rig.svc.dispatch.open == {}
