"""Overdue problems and the ledger's counts: the `problem:{id}:overdue` alerts and the
`problems` measurement (docs/problems.md#overdue-alerts-events-time-series).

`sweep(now)` (the hub's periodic sweep) raises an alert when a deadline passes while the
problem is `open` or `assigned` and clears it when the problem moves on or is deleted; it
writes one `problems` point per (village, category) each minute and after every change.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from hub.messages import Point
from hub.ports import AlertBook, PointSink
from hub.problems.model import Problem
from hub.problems.store import ProblemStore

COUNTS_EVERY_S: Final = 60.0


def alert_key(pid: str) -> str:
    return f"problem:{pid}:overdue"


class OverdueWatch:
    def __init__(self, *, store: ProblemStore, alerts: AlertBook, zone: ZoneInfo,
                 village_name: Callable[[str], str | None], emit_points: PointSink) -> None:
        self.store, self.alerts, self.zone = store, alerts, zone
        self.village_name, self.emit_points = village_name, emit_points
        self._lock = threading.Lock()
        self._overdue: set[str] = set()
        self._series: set[tuple[str, str]] = set()
        self._counts_at: float | None = None
        self.dirty = True  # the counts changed since they were last written

    def start(self) -> None:
        """Pick up the overdue alerts still open from before a restart."""
        with self._lock:
            for a in self.alerts.open_alerts():
                key = getattr(a, "key", "")
                if key.startswith("problem:") and key.endswith(":overdue"):
                    self._overdue.add(key.split(":")[1])

    def local_time(self, ts: float | None) -> str:
        return "" if ts is None else datetime.fromtimestamp(ts, self.zone).strftime("%Y-%m-%d %H:%M")

    def sweep(self, now: float) -> None:
        """Raise/clear overdue alerts; write the counts each minute and after a change."""
        rows = self.store.overdue_ids(now)
        current = {r[0] for r in rows}
        with self._lock:
            new = [r for r in rows if r[0] not in self._overdue]
            gone = self._overdue - current
            self._overdue = current
        for pid, device_id, deadline, village, title, owner in new:
            self._raise(pid, device_id, deadline, village, title, owner, now)
        for pid in gone:
            self.alerts.clear_alert(alert_key(pid), now)
        if new or gone:
            self.dirty = True
        if self.dirty or self._counts_at is None or now - self._counts_at >= COUNTS_EVERY_S:
            self.write_counts(now)

    def _raise(self, pid: str, device_id: str | None, deadline: float, village: str, title: str,
               owner: str | None, now: float) -> None:
        name = self.village_name(village) or village
        self.alerts.raise_alert(
            alert_key(pid), device_id=device_id, type="problem_overdue", severity="warning",
            message=f"整改事项超期：{name}「{title[:40]}」（{pid}）截止 {self.local_time(deadline)}，"
                    f"责任人 {owner or '未指定'}", ts=now,
        )

    def refresh(self, problem: Problem, now: float) -> None:
        """After a transition: raise or clear the problem's alert at once."""
        overdue = problem.is_overdue(now)
        with self._lock:
            was = problem.id in self._overdue
            if overdue:
                self._overdue.add(problem.id)
            else:
                self._overdue.discard(problem.id)
        if was and not overdue:
            self.alerts.clear_alert(alert_key(problem.id), now)
        elif overdue and not was:
            assert problem.deadline is not None
            self._raise(problem.id, problem.device_id, problem.deadline, problem.village, problem.title,
                        problem.owner, now)

    def forget(self, pid: str, now: float) -> None:
        """A deleted problem: its alert is cleared."""
        with self._lock:
            was = pid in self._overdue
            self._overdue.discard(pid)
        if was:
            self.alerts.clear_alert(alert_key(pid), now)
        self.dirty = True

    def write_counts(self, now: float) -> int:
        """One `problems` point per (village, category) ever seen; returns how many."""
        self.dirty = False
        self._counts_at = now
        counts = self.store.counts(now)
        for key in self._series - counts.keys():  # all deleted: the series goes to zero
            counts[key] = {"open": 0, "overdue": 0, "closed": 0}
        self._series = set(counts)
        points = [Point("problems", {"village": v, "category": c}, dict(n), now) for (v, c), n in counts.items()]
        if points:
            self.emit_points(points)
        return len(points)
