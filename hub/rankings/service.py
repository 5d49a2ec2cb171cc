"""RankingService: the ranking of the villages for one period, with its breakdown and the
trend against the period before. Computed from stored data on request; a result is kept
for a minute (the same period asked again by several screens costs one computation)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from hub.clock import Clock
from hub.rankings import collect
from hub.rankings.periods import Period, current, parse_period, recent
from hub.rankings.scoring import Component, breakdown, has_data, rank, trend, village_score
from hub.tsdb.base import TimeSeriesStore

CACHE_S = 60.0


@dataclass(frozen=True, slots=True)
class Sources:
    """Where the components come from; any may be None (that component has no data)."""

    store: TimeSeriesStore | None
    alerts: Any  # hub.alerts.AlertBook
    problems: Any  # hub.problems.store.ProblemStore
    broadcasts: Callable[[], Any]  # → hub.broadcasts.store.BroadcastStore or None


class RankingService:
    def __init__(self, *, sources: Sources, villages: Callable[[], list[tuple[str, str]]], clock: Clock,
                 zone: ZoneInfo, weights: dict[str, float], alarm_ack_limit_s: float = 1800.0) -> None:
        self.sources, self.villages, self.clock, self.zone = sources, villages, clock, zone
        self.weights = dict(weights)
        self.alarm_ack_limit_s = alarm_ack_limit_s
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}

    def period(self, key: str | None) -> Period:
        """PeriodError for a bad key; the current quarter when None."""
        if not key:
            return current("quarter", self.clock.now(), self.zone)
        return parse_period(key, self.zone)

    def components(self, period: Period, village_ids: list[str], now: float) -> dict[str, dict[str, Component]]:
        """{village: {component: Component}} for the period."""
        start, end = period.start, period.end
        src = self.sources
        empty = {v: Component(0, 0) for v in village_ids}
        parts: dict[str, dict[str, Component]] = {
            "availability": collect.availability(src.store, village_ids, start, end, now) if src.store else empty,
            "alarm_ack": collect.alarm_ack(src.alerts, village_ids, start, end, now, self.alarm_ack_limit_s)
            if src.alerts is not None else empty,
            "problems_on_time": collect.problems_on_time(src.problems.deadlines_between(start, end), village_ids,
                                                         now) if src.problems is not None else empty,
        }
        bstore = src.broadcasts()
        parts["broadcast_delivery"] = (collect.broadcast_delivery(bstore, village_ids, start, end, now)
                                       if bstore is not None else empty)
        return {v: {k: parts[k][v] for k in parts} for v in village_ids}

    def ranking(self, key: str | None = None) -> dict[str, Any]:
        period = self.period(key)
        now = self.clock.now()
        with self._lock:
            hit = self._cache.get(period.key)
            if hit is not None and now - hit[0] < CACHE_S:
                return hit[1]
        result = self.compute(period, now)
        with self._lock:
            self._cache[period.key] = (now, result)
            if len(self._cache) > 64:
                self._cache.pop(next(iter(self._cache)))
        return result

    def compute(self, period: Period, now: float) -> dict[str, Any]:
        names = dict(self.villages())
        ids = sorted(names)
        comps = self.components(period, ids, now)
        scores = {v: village_score(comps[v], self.weights) for v in ids}
        before = period.previous()
        prev_comps = self.components(before, ids, now)
        prev_scores = {v: village_score(prev_comps[v], self.weights) for v in ids if has_data(prev_comps[v])}
        prev_rank = {v: r for r, v, _ in rank(prev_scores)}
        items = []
        for r, v, score in rank(scores):
            pr = prev_rank.get(v)
            items.append({"rank": r, "village": v, "name": names[v], "score": score, "previous_rank": pr,
                          "trend": trend(r, pr), "breakdown": breakdown(comps[v], self.weights)})
        return {
            "period": period.key, "kind": period.kind, "label": period.label,
            "start": period.start_iso(), "end": period.end_iso(),
            "previous_period": before.key, "computed_at": now,
            "weights": dict(self.weights), "alarm_ack_limit_s": self.alarm_ack_limit_s,
            "items": items,
        }

    def periods(self) -> dict[str, Any]:
        now = self.clock.now()
        cur = current("quarter", now, self.zone)
        return {"current": cur.key, "items": [
            {"period": p.key, "kind": p.kind, "label": p.label, "start": p.start_iso(), "end": p.end_iso(),
             "current": p.start <= now < p.end}
            for p in recent(now, self.zone)]}
