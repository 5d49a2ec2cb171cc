"""What the API and the wall screen read about broadcasts: lists, one broadcast with its
occurrences, the calendar, what plays now and what comes next. Each read flushes the
pending delivery changes first, so it is never stale."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from hub.broadcasts.catalog import Catalog
from hub.broadcasts.dispatch import Dispatcher
from hub.broadcasts.model import NotFound
from hub.broadcasts.outcomes import Recorder
from hub.broadcasts.scheduler import Scheduler
from hub.broadcasts.store import BroadcastStore
from hub.broadcasts.views import broadcast_view, calendar_items


@dataclass(kw_only=True)
class BroadcastQueries:
    store: BroadcastStore
    catalog: Catalog
    scheduler: Scheduler
    dispatch: Dispatcher
    recorder: Recorder
    lock: threading.RLock

    def flush(self) -> None:
        with self.lock:
            self.recorder.flush()

    def list_broadcasts(self, status: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        self.flush()
        return [{"id": r["id"], "title": r["title"], "priority": r["priority"],
                 "status": r["status"], "created_at": r["created_at"], "created_by": r["created_by"],
                 "next_at": r["next_at"]} for r in self.store.list_broadcasts(status, limit)]

    def get(self, bid: str, upcoming: int = 5, detailed: int = 5) -> dict[str, Any]:
        """One broadcast: every occurrence with its summary; each speaker's delivery for the
        latest `detailed` occurrences (older ones: empty, `deliveries_omitted` true)."""
        self.flush()
        row = self.store.get_broadcast(bid)
        if row is None:
            raise NotFound(bid)
        rec = self.catalog.load(bid).rec
        nxt: list[float] = []
        at = row["next_at"]
        while at is not None and len(nxt) < upcoming:
            nxt.append(at)
            at = rec.next_after(at)
        occurrences = self.store.occurrences(bid)
        shown = [o["id"] for o in occurrences[-detailed:]] if detailed > 0 else []
        return broadcast_view(row, occurrences, self.store.state_counts(bid), set(shown),
                              self.store.deliveries_of_occurrences(shown), self.store.waiting(bid),
                              self.store.audit_log(bid), nxt)

    def calendar(self, start: float, end: float) -> list[dict[str, Any]]:
        self.flush()
        future = []
        for bid, at in self.scheduler.timetable().items():
            b = self.catalog.load(bid)
            for t in b.rec.between(max(start, at), end):
                future.append((bid, b.title, b.spec.priority, t))
        return calendar_items(self.store.occurrences_between(start, end), future)

    def now_playing(self) -> list[dict[str, Any]]:
        with self.lock:
            counts = Counter(d.broadcast_id for d in self.dispatch.open.values()
                             if d.state == "playing")
        return [{"broadcast_id": bid, "title": self.catalog.load(bid).title,
                 "priority": self.catalog.load(bid).spec.priority, "speakers": n}
                for bid, n in counts.most_common()]

    def next_up(self, limit: int = 5) -> list[dict[str, Any]]:
        items = sorted(self.scheduler.timetable().items(), key=lambda kv: kv[1])[:limit]
        return [{"broadcast_id": bid, "title": self.catalog.load(bid).title,
                 "priority": self.catalog.load(bid).spec.priority, "at": at} for bid, at in items]
