"""Light command batches, per-lamp deliveries and the lamps' sun-mode schedules in SQLite
(`<VH_DATA_DIR>/lights.db`)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.lights.sunplan import SunPlan, schedule_from_wire
from hub.sqlitedb import open_db

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
  id TEXT PRIMARY KEY, action TEXT NOT NULL, body TEXT NOT NULL, created_at REAL NOT NULL, by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
  command_id TEXT PRIMARY KEY, batch_id TEXT NOT NULL REFERENCES batches(id), device TEXT NOT NULL,
  state TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', updated_at REAL NOT NULL,
  expires_at REAL NOT NULL, payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_batch ON deliveries (batch_id);
CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries (state)
  WHERE state IN ('pending', 'sent', 'received', 'offline');
CREATE INDEX IF NOT EXISTS batches_created ON batches (created_at);
CREATE TABLE IF NOT EXISTS sun_plans (
  device TEXT PRIMARY KEY, schedule TEXT NOT NULL, command_id TEXT NOT NULL, next_off REAL NOT NULL,
  sent_at REAL NOT NULL
);
"""


@dataclass(slots=True)
class Delivery:
    command_id: str
    batch_id: str
    device: str
    state: str
    reason: str
    updated_at: float
    expires_at: float
    payload: str  # the JSON command, kept to send it when an offline lamp returns

    def to_json(self) -> dict[str, Any]:
        return {"device": self.device, "command_id": self.command_id, "state": self.state,
                "reason": self.reason or None, "updated_at": self.updated_at}


@dataclass(frozen=True, slots=True)
class Batch:
    id: str
    action: str
    body: dict[str, Any]
    created_at: float
    by: str


_DCOLS = "command_id, batch_id, device, state, reason, updated_at, expires_at, payload"


class LightStore:
    def __init__(self, path: Path) -> None:
        self._db = open_db(path, _SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add_batch(self, batch: Batch, deliveries: list[Delivery]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.execute("INSERT INTO batches (id, action, body, created_at, by) VALUES (?,?,?,?,?)",
                                 (batch.id, batch.action, json.dumps(batch.body, ensure_ascii=False),
                                  batch.created_at, batch.by))
                self._db.executemany(f"INSERT INTO deliveries ({_DCOLS}) VALUES (?,?,?,?,?,?,?,?)",
                                     [_row(d) for d in deliveries])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def update(self, d: Delivery) -> None:
        with self._lock:
            self._db.execute("UPDATE deliveries SET state = ?, reason = ?, updated_at = ? WHERE command_id = ?",
                             (d.state, d.reason, d.updated_at, d.command_id))

    def open_deliveries(self) -> list[Delivery]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_DCOLS} FROM deliveries "
                                    "WHERE state IN ('pending', 'sent', 'received', 'offline')").fetchall()
        return [Delivery(*r) for r in rows]

    def delivery(self, command_id: str) -> Delivery | None:
        with self._lock:
            r = self._db.execute(f"SELECT {_DCOLS} FROM deliveries WHERE command_id = ?", (command_id,)).fetchone()
        return Delivery(*r) if r else None

    def batch(self, batch_id: str) -> tuple[Batch, list[Delivery]] | None:
        with self._lock:
            b = self._db.execute("SELECT id, action, body, created_at, by FROM batches WHERE id = ?",
                                 (batch_id,)).fetchone()
            if b is None:
                return None
            rows = self._db.execute(f"SELECT {_DCOLS} FROM deliveries WHERE batch_id = ? ORDER BY device",
                                    (batch_id,)).fetchall()
        return Batch(b[0], b[1], json.loads(b[2]), b[3], b[4]), [Delivery(*r) for r in rows]


    # --- sun-mode schedules (hub.lights.sunplan) -------------------------------------------
    def save_sun_plans(self, plans: list[SunPlan], drop: list[str]) -> None:
        """Upsert `plans`; forget the plans of the devices in `drop` (a fixed schedule now)."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT INTO sun_plans (device, schedule, command_id, next_off, sent_at) VALUES (?,?,?,?,?) "
                    "ON CONFLICT (device) DO UPDATE SET schedule = excluded.schedule, "
                    "command_id = excluded.command_id, next_off = excluded.next_off, sent_at = excluded.sent_at",
                    [(p.device, json.dumps(p.schedule.wire()), p.command_id, p.next_off, p.sent_at)
                     for p in plans])
                self._db.executemany("DELETE FROM sun_plans WHERE device = ?", [(d,) for d in drop])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def sun_plans(self) -> list[SunPlan]:
        """Every lamp's sun schedule, with the delivery state of the command that last sent it."""
        with self._lock:
            rows = self._db.execute(
                "SELECT p.device, p.schedule, p.command_id, p.next_off, p.sent_at, d.state FROM sun_plans p "
                "LEFT JOIN deliveries d ON d.command_id = p.command_id ORDER BY p.device").fetchall()
        return [SunPlan(dev, schedule_from_wire(json.loads(sched)), cid, next_off, sent_at, state or "pending")
                for dev, sched, cid, next_off, sent_at, state in rows]


def _row(d: Delivery) -> tuple[Any, ...]:
    return (d.command_id, d.batch_id, d.device, d.state, d.reason, d.updated_at, d.expires_at, d.payload)
