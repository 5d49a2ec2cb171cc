"""Shapes the API and the wall screen read: summaries, one broadcast, the calendar. Pure."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from hub.broadcasts.model import Delivery


def summary_of(counts: Mapping[str, int]) -> dict[str, Any]:
    by_state = {k: v for k, v in sorted(counts.items()) if v}
    return {"total": sum(by_state.values()), "done": by_state.get("done", 0), "by_state": by_state}


def occurrence_summaries(counts: Iterable[sqlite3.Row]) -> dict[str, dict[str, Any]]:
    """(occurrence_id, village, state, n) rows → per occurrence: done / total overall and by
    village, and the count in each state."""
    states: dict[str, Counter[str]] = defaultdict(Counter)
    villages: dict[str, dict[str, dict[str, int]]] = defaultdict(
        lambda: defaultdict(lambda: {"done": 0, "total": 0}))
    for r in counts:
        occ, village, state, n = r["occurrence_id"], r["village"], r["state"], r["n"]
        states[occ][state] += n
        v = villages[occ][village]
        v["total"] += n
        if state == "done":
            v["done"] += n
    return {occ: {**summary_of(states[occ]), "by_village": dict(sorted(villages[occ].items()))}
            for occ in states}


def delivery_view(d: Delivery) -> dict[str, Any]:
    return {"device": d.device_id, "village": d.village, "group": d.group, "state": d.state,
            "command_id": d.command_id, "reason": d.reason, "updated_at": d.updated_at,
            "due_at": d.due_at, "expires_at": d.expires_at, "send_count": d.send_count}


def broadcast_view(row: sqlite3.Row, occurrences: list[sqlite3.Row], counts: list[sqlite3.Row],
                   shown: set[str], deliveries: list[Delivery], waiting: list[Delivery],
                   audit: list[sqlite3.Row], upcoming: list[float]) -> dict[str, Any]:
    """One broadcast; `deliveries` are those of the occurrences in `shown` (the latest)."""
    by_occ: dict[str, list[Delivery]] = defaultdict(list)
    for d in deliveries:
        by_occ[d.occurrence_id].append(d)
    summaries = occurrence_summaries(counts)
    empty = {"total": 0, "done": 0, "by_state": {}, "by_village": {}}
    spec = json.loads(row["spec"])
    return {
        "id": row["id"], "title": row["title"], "priority": row["priority"],
        "status": row["status"], "created_at": row["created_at"], "created_by": row["created_by"],
        "cancelled_at": row["cancelled_at"], "cancelled_by": row["cancelled_by"],
        "next_at": row["next_at"], "upcoming": upcoming,
        "media": spec["media"], "targets": spec["targets"], "volume": spec["volume"],
        "repeat": spec["repeat"], "schedule": spec["schedule"],
        "quiet_hours": spec["quiet_hours"], "valid_for_s": spec["valid_for_s"],
        "occurrences": [
            {"id": o["id"], "seq": o["seq"], "nominal_at": o["nominal_at"],
             "fired_at": o["fired_at"], "status": o["status"], "note": o["note"],
             "summary": summaries.get(o["id"], empty),
             "deliveries": [delivery_view(d) for d in by_occ.get(o["id"], ())],
             "deliveries_omitted": o["id"] not in shown}
            for o in occurrences
        ],
        "conflicts": [{"device": d.device_id, "occurrence_id": d.occurrence_id,
                       "waiting_for": d.reason.split(":", 1)[1]} for d in waiting],
        "audit": [{"ts": a["ts"], "actor": a["actor"], "action": a["action"],
                   "detail": a["detail"]} for a in audit],
    }


def calendar_items(past: list[sqlite3.Row],
                   future: list[tuple[str, str, int, float]]) -> list[dict[str, Any]]:
    """Fired/missed occurrences from the database beside scheduled ones expanded lazily."""
    items = [{"broadcast_id": r["broadcast_id"], "title": r["title"], "priority": r["priority"],
              "at": r["nominal_at"], "status": r["status"]} for r in past]
    items += [{"broadcast_id": bid, "title": title, "priority": prio, "at": at,
               "status": "scheduled"} for bid, title, prio, at in future]
    items.sort(key=lambda i: (i["at"], i["broadcast_id"]))
    return items
