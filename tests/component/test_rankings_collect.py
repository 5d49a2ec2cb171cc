"""The ranking computed from stored data: presence in the time-series store (the embedded
SQLite store and a real influxd), alerts in the AlertBook, the ledger, broadcast deliveries.
Exact values, ties, trend against the previous period, and reproducibility of a past period."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hub.alerts import AlertBook
from hub.auth import Principal
from hub.broadcasts.model import Delivery
from hub.broadcasts.store import BroadcastStore
from hub.clock import ManualClock, SystemClock
from hub.messages import Point
from hub.problems.service import DeviceInfo, NewProblem, Places, ProblemService
from hub.problems.store import ProblemStore
from hub.rankings.periods import parse_period
from hub.rankings.scoring import DEFAULT_WEIGHTS
from hub.rankings.service import RankingService, Sources
from hub.tsdb.base import TimeSeriesStore
from hub.tsdb.lineprotocol import encode_points
from tests.servers import InfluxServer

pytestmark = pytest.mark.component
SH = ZoneInfo("Asia/Shanghai")
OP = Principal("op", "operator", "op")
VILLAGE_OF = {"d1": "v01", "d2": "v01", "d3": "v02"}


def t(month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(2026, month, day, hour, minute, tzinfo=SH).timestamp()


NOW = t(12, 2, 10)


@pytest.fixture(params=["sqlite", "influx"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TimeSeriesStore]:
    if request.param == "sqlite":
        from hub.tsdb.sqlite_store import SqliteStore

        s: Any = SqliteStore(tmp_path / "ts.db", clock=SystemClock())
    else:
        from hub.tsdb.influx_v1 import InfluxV1Store

        influx: InfluxServer = request.getfixturevalue("influxdb")
        s = InfluxV1Store(influx.url, "vh_rank_" + tmp_path.name.replace("-", "_")[:30], None, None)
    s.setup()
    yield s
    s.close()


def presence(store: TimeSeriesStore, device: str, ts: float, online: bool) -> None:
    tags = {"device": device, "village": VILLAGE_OF[device], "village_group": "", "kind": "camera"}
    store.write_lines(encode_points([Point("presence", tags, {"online": online, "reason": "status"}, ts)]))


def seed(store: TimeSeriesStore, tmp: Path) -> RankingService:
    # availability: d1 online from Oct 20, offline Nov 16–19; d2 online from Oct 1; d3 first heard Nov 11
    presence(store, "d1", t(10, 20), True)
    presence(store, "d1", t(11, 16), False)
    presence(store, "d1", t(11, 19), True)
    presence(store, "d2", t(10, 1), True)
    presence(store, "d3", t(11, 11), True)
    alerts = AlertBook(tmp / "hub.db", village_of=VILLAGE_OF.get)

    def alert(key: str, device: str, at: float, ack_after: float | None = None, clear_after: float | None = None,
              type_: str = "offline") -> None:
        a = alerts.raise_alert(key, device_id=device, type=type_, severity="warning", message="x", ts=at)
        assert a is not None
        if ack_after is not None:
            alerts.acknowledge(a.id, "op", at + ack_after)
        if clear_after is not None:
            alerts.clear_alert(key, at + clear_after)

    alert("a1", "d1", t(11, 3), ack_after=600, clear_after=3600)  # in time
    alert("a2", "d1", t(11, 4), ack_after=7200, clear_after=8000)  # late
    alert("a3", "d2", t(11, 5), clear_after=300)  # gone by itself within the limit: not judged
    alert("a4", "d2", t(11, 6), clear_after=3600)  # never acknowledged: late
    alert("a5", "d2", t(11, 7), type_="problem_overdue")  # the ledger's own: not a device alarm
    alert("a6", "d1", t(10, 7), ack_after=60, clear_after=120)  # October
    problems = ProblemStore(tmp / "problems.db", tmp / "problems")
    clock = ManualClock(NOW)
    ledger = ProblemService(store=problems, clock=clock, zone=SH,
                            places=Places(lambda d: DeviceInfo("camera", VILLAGE_OF.get(d), None),
                                          lambda v: v, lambda g: None),
                            alerts=alerts, events=type("E", (), {"publish": lambda *a, **k: None})(),
                            emit_points=lambda p: None, audit=lambda *a: None)

    def problem(deadline: float, steps: list[tuple[str, float]], village: str = "v02") -> None:
        p = ledger.create(NewProblem(village=village, category="environment", title="x", owner="o",
                                     deadline=deadline), OP, created_at=deadline - 5 * 86400)
        for to, at in steps:
            ledger.transition(p.id, to, OP, at=at)

    problem(t(11, 10), [("assigned", t(11, 6)), ("fixed", t(11, 8)), ("verified", t(11, 9)), ("closed", t(11, 9, 1))])
    problem(t(11, 20), [("assigned", t(11, 16)), ("fixed", t(11, 24)), ("verified", t(11, 25))])  # late
    problem(t(11, 21), [("rejected", t(11, 17))])  # not judged
    problem(t(12, 20), [])  # deadline in December
    bstore = BroadcastStore(tmp / "broadcasts.db")
    bstore.insert_broadcast(id="b1", title="通知", priority=3, spec={}, created_at=t(11, 1), created_by="op",
                            next_at=t(11, 5))
    states = [("s1", "v01", "done"), ("s2", "v01", "done"), ("s3", "v01", "failed"), ("s4", "v02", "done"),
              ("s5", "v02", "preempted")]
    bstore.record_occurrence(
        broadcast_id="b1", occurrence_id="o1", nominal_at=t(11, 5), fired_at=t(11, 5), status="fired", note="",
        deliveries=[Delivery(f"c-{d}", "o1", "b1", d, v, "", 3, st, t(11, 5), t(11, 5, 1)) for d, v, st in states],
        next_at=None, expected_next_at=t(11, 5))
    return RankingService(
        sources=Sources(store=store, alerts=alerts, problems=problems, broadcasts=lambda: bstore),
        villages=lambda: [("v01", "李家村"), ("v02", "王庄村"), ("v03", "张湾村")], clock=clock, zone=SH,
        weights=dict(DEFAULT_WEIGHTS), alarm_ack_limit_s=1800)


def test_a_month_ranked_from_stored_data_with_breakdown_trend_and_reproducibility(
        store: TimeSeriesStore, tmp_path: Path) -> None:
    svc = seed(store, tmp_path)
    got = svc.ranking("2026-11")
    assert (got["period"], got["start"], got["end"]) == ("2026-11", "2026-11-01T00:00:00+08:00",
                                                         "2026-12-01T00:00:00+08:00")
    items = {i["village"]: i for i in got["items"]}
    b1 = items["v01"]["breakdown"]
    assert b1["availability"]["value"] == 0.95 and b1["availability"]["score"] == 95.0  # 57 of 60 device-days
    assert "2 台设备" in b1["availability"]["detail"]
    assert b1["alarm_ack"]["score"] == 33.3 and "1/3" in b1["alarm_ack"]["detail"]
    assert b1["problems_on_time"]["detail"] == "无数据" and b1["problems_on_time"]["score"] == 100.0
    assert b1["broadcast_delivery"]["value"] == pytest.approx(2 / 3, abs=1e-4)
    # 0.4·95 + 0.2·33.3 + 0.25·100 + 0.15·66.7 = 79.67
    assert items["v01"]["score"] == 79.7
    b2 = items["v02"]["breakdown"]
    assert b2["availability"]["value"] == 1.0 and "1 台设备" in b2["availability"]["detail"]
    assert b2["problems_on_time"]["value"] == 0.5 and b2["broadcast_delivery"]["detail"] == "送达 1/1 次"
    assert items["v02"]["score"] == 87.5
    assert items["v03"]["score"] == 100.0  # no data at all counts as 100 (documented)
    assert [(i["rank"], i["village"]) for i in got["items"]] == [(1, "v03"), (2, "v02"), (3, "v01")]
    # October: only v01 has data (d1, d2 were online) → rank 1 then; v02 and v03 are new
    assert (items["v01"]["previous_rank"], items["v01"]["trend"]) == (1, "down")
    assert (items["v02"]["previous_rank"], items["v02"]["trend"]) == (None, "new")

    # reproducible: data after the period does not change it
    presence(store, "d2", t(12, 1, 8), False)
    svc.sources.alerts.raise_alert("late", device_id="d1", type="offline", severity="warning", message="x",
                                   ts=t(12, 1, 9))
    again = svc.compute(parse_period("2026-11", SH), NOW + 3600)
    strip = lambda r: {k: v for k, v in r.items() if k != "computed_at"}  # noqa: E731
    assert strip(again) == strip(got)
    dec = svc.compute(parse_period("2026-12", SH), NOW + 3600)
    d1 = {i["village"]: i for i in dec["items"]}["v01"]["breakdown"]["availability"]
    assert d1["value"] < 1.0  # d2 went offline on Dec 1


def test_ties_share_a_rank(store: TimeSeriesStore, tmp_path: Path) -> None:
    svc = seed(store, tmp_path)
    got = svc.ranking("2026-09")  # nothing stored for September: everyone has no data, all tie at 100
    assert [(i["rank"], i["score"]) for i in got["items"]] == [(1, 100.0), (1, 100.0), (1, 100.0)]
