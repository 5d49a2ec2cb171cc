"""Ranking scores (pure): components → score, weights, ranks with ties, trend, online time,
and period parsing (quarters, months, ISO weeks incl. week 53, time zone)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from hub.rankings.periods import PeriodError, containing, current, parse_period, recent
from hub.rankings.scoring import (
    DEFAULT_WEIGHTS,
    NO_DATA,
    Component,
    breakdown,
    component_score,
    has_data,
    online_seconds,
    parse_weights,
    rank,
    trend,
    village_score,
)

pytestmark = pytest.mark.unit
SH = ZoneInfo("Asia/Shanghai")
UTC = ZoneInfo("UTC")


# --- scores ---------------------------------------------------------------------------


def test_component_score_is_the_ratio_in_percent_and_no_data_counts_as_100() -> None:
    assert component_score(Component(3, 4)) == 75.0
    assert component_score(Component(0, 5)) == 0.0
    assert component_score(Component(0, 0)) == 100.0
    assert Component(0, 0).value is None


def test_village_score_is_the_weighted_mean_of_component_scores() -> None:
    comps = {"availability": Component(9, 10), "alarm_ack": Component(1, 2),
             "problems_on_time": Component(3, 4), "broadcast_delivery": Component(0, 0)}
    # 0.4·90 + 0.2·50 + 0.25·75 + 0.15·100 = 36 + 10 + 18.75 + 15 = 79.75 → 79.8
    assert village_score(comps, DEFAULT_WEIGHTS) == 79.8


def test_weights_that_do_not_add_up_to_one_are_normalised() -> None:
    comps = {"availability": Component(1, 2), "alarm_ack": Component(1, 1)}
    w = {"availability": 2.0, "alarm_ack": 2.0, "problems_on_time": 0.0, "broadcast_delivery": 0.0}
    assert village_score(comps, w) == 75.0


def test_breakdown_names_each_component_and_marks_no_data() -> None:
    b = breakdown({"availability": Component(1, 4, "在线率 25.0%")}, DEFAULT_WEIGHTS)
    assert b["availability"] == {"value": 0.25, "score": 25.0, "weight": 0.4, "detail": "在线率 25.0%"}
    assert b["alarm_ack"]["detail"] == NO_DATA and b["alarm_ack"]["score"] == 100.0
    assert b["alarm_ack"]["value"] is None
    assert not has_data({"a": Component(0, 0)}) and has_data({"a": Component(0, 1)})


@pytest.mark.parametrize(("text", "err"), [
    ("availability=0.4,speed=1", "unknown component"),
    ("availability=abc", "not a number"),
    ("availability=-1", "≥ 0"),
    ("availability=0,alarm_ack=0", "above 0"),
    ("availability", "name=weight"),
    ("availability=1,availability=2", "twice"),
    ("availability=nan", "finite"),
])
def test_bad_weights_are_refused_naming_the_problem(text: str, err: str) -> None:
    with pytest.raises(ValueError, match=err):
        parse_weights(text)


def test_weights_parse_and_missing_components_weigh_zero() -> None:
    assert parse_weights("availability=0.4,alarm_ack=0.2,problems_on_time=0.25,broadcast_delivery=0.15") == \
        DEFAULT_WEIGHTS
    assert parse_weights(" availability = 1 ") == {"availability": 1.0, "alarm_ack": 0.0,
                                                  "problems_on_time": 0.0, "broadcast_delivery": 0.0}


# --- ranks and trends ------------------------------------------------------------------


def test_ties_share_a_rank_and_the_next_rank_is_skipped() -> None:
    got = rank({"v03": 80.0, "v01": 90.0, "v02": 80.0, "v04": 70.0, "v05": 90.0})
    assert got == [(1, "v01", 90.0), (1, "v05", 90.0), (3, "v02", 80.0), (3, "v03", 80.0), (5, "v04", 70.0)]
    assert rank({}) == []


@pytest.mark.parametrize(("now", "before", "want"), [(1, 3, "up"), (3, 1, "down"), (2, 2, "same"), (1, None, "new")])
def test_trend(now: int, before: int | None, want: str) -> None:
    assert trend(now, before) == want


# --- online time ------------------------------------------------------------------------


def test_online_time_counts_the_state_carried_in_from_before_the_period() -> None:
    # online since before the period, offline 100 s in, back online at 300 s, period 0..1000
    on, known = online_seconds([(-50.0, True), (100.0, False), (300.0, True)], 0.0, 1000.0)
    assert (on, known) == (800.0, 1000.0)


def test_time_before_the_first_known_state_is_not_counted() -> None:
    on, known = online_seconds([(400.0, True), (900.0, False), (2000.0, True)], 0.0, 1000.0)
    assert (on, known) == (500.0, 600.0)
    assert online_seconds([], 0.0, 1000.0) == (0.0, 0.0)
    assert online_seconds([(5.0, True)], 10.0, 10.0) == (0.0, 0.0)


# --- periods ----------------------------------------------------------------------------


def test_quarter_boundaries_are_local_midnights() -> None:
    q1 = parse_period("2026-Q1", SH)
    assert (q1.first_day, q1.end_day) == (date(2026, 1, 1), date(2026, 4, 1))
    assert q1.start == datetime(2025, 12, 31, 16, 0, tzinfo=UTC).timestamp()
    assert q1.previous().key == "2025-Q4" and q1.previous().end == q1.start
    q4 = parse_period("2026-Q4", SH)
    assert q4.end_day == date(2027, 1, 1) and q4.next().key == "2027-Q1"
    assert q4.label == "2026年第四季度"


def test_a_moment_just_before_local_new_year_is_in_q4_though_utc_says_otherwise() -> None:
    # 2026-12-31 23:30 in Shanghai is 15:30 UTC: Q4 in both; 2027-01-01 00:30 local is still 2026 in UTC
    ts = datetime(2027, 1, 1, 0, 30, tzinfo=SH).timestamp()
    assert current("quarter", ts, SH).key == "2027-Q1"
    assert current("quarter", ts, UTC).key == "2026-Q4"


def test_months_and_their_previous_across_the_year() -> None:
    jan = parse_period("2027-01", SH)
    assert jan.previous().key == "2026-12" and jan.previous().end_day == date(2027, 1, 1)
    assert parse_period("2026-11", SH).label == "2026年11月"


def test_iso_weeks_including_week_53_and_the_week_that_starts_in_the_year_before() -> None:
    w53 = parse_period("2026-W53", SH)  # 2026 has 53 ISO weeks (it starts on a Thursday)
    assert (w53.first_day, w53.end_day) == (date(2026, 12, 28), date(2027, 1, 4))
    assert w53.next().key == "2027-W01"
    w01 = parse_period("2026-W01", SH)
    assert w01.first_day == date(2025, 12, 29) and w01.previous().key == "2025-W52"
    assert containing("week", date(2027, 1, 2), SH).key == "2026-W53"
    with pytest.raises(PeriodError, match="W01–W52"):
        parse_period("2025-W53", SH)


@pytest.mark.parametrize("bad", ["2026-Q5", "2026-Q0", "2026-13", "2026-00", "2026-W00", "2026-W54", "26-Q1",
                                 "1999-Q1", "2026-q1", "", "2026-11-01", "Q4-2026"])
def test_bad_period_keys_are_refused(bad: str) -> None:
    with pytest.raises(PeriodError):
        parse_period(bad, SH)


def test_recent_periods_start_with_the_current_ones() -> None:
    now = datetime(2026, 12, 2, 10, 0, tzinfo=SH).timestamp()
    keys = [p.key for p in recent(now, SH, quarters=2, months=2, weeks=2)]
    assert keys == ["2026-Q4", "2026-Q3", "2026-12", "2026-11", "2026-W49", "2026-W48"]


# --- settings ---------------------------------------------------------------------------


def test_settings_refuse_bad_ranking_weights_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from hub.settings import SettingsError, load_settings

    monkeypatch.setenv("VH_RANKING_WEIGHTS", "availability=0.5,uptime=0.5")
    with pytest.raises(SettingsError, match=r"VH_RANKING_WEIGHTS.*unknown component 'uptime'"):
        load_settings()
    monkeypatch.setenv("VH_RANKING_WEIGHTS", "availability=1")
    monkeypatch.setenv("VH_ALARM_ACK_LIMIT_S", "0")
    with pytest.raises(SettingsError, match="VH_ALARM_ACK_LIMIT_S"):
        load_settings()
    monkeypatch.setenv("VH_ALARM_ACK_LIMIT_S", "600")
    s = load_settings()
    assert s.ranking.weights["availability"] == 1.0 and s.ranking.alarm_ack_limit_s == 600.0
