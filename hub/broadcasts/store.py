"""The broadcast database: `<VH_DATA_DIR>/broadcasts.db` (SQLite, WAL, stdlib sqlite3).

Broadcasts, the occurrences that fired (lazily: future ones are computed, never stored),
one delivery per occurrence and speaker, an audit of who did what, quiet hours per
village. An occurrence is inserted together with the advance of its
broadcast's `next_at` in one transaction, under UNIQUE(broadcast_id, nominal_at): a
restarted hub can never fire one twice.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hub.broadcasts.model import Delivery
from hub.sqlitedb import open_db

SCHEMA = """
CREATE TABLE IF NOT EXISTS broadcasts (
  id TEXT PRIMARY KEY, title TEXT NOT NULL, priority INTEGER NOT NULL, spec TEXT NOT NULL,
  status TEXT NOT NULL, created_at REAL NOT NULL, created_by TEXT NOT NULL,
  cancelled_at REAL, cancelled_by TEXT, next_at REAL, fired INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS broadcasts_due ON broadcasts(status, next_at);
CREATE TABLE IF NOT EXISTS occurrences (
  id TEXT PRIMARY KEY, broadcast_id TEXT NOT NULL, seq INTEGER NOT NULL,
  nominal_at REAL NOT NULL, fired_at REAL NOT NULL, status TEXT NOT NULL, note TEXT NOT NULL DEFAULT '',
  UNIQUE(broadcast_id, nominal_at)
);
CREATE TABLE IF NOT EXISTS deliveries (
  command_id TEXT PRIMARY KEY, occurrence_id TEXT NOT NULL, broadcast_id TEXT NOT NULL,
  device_id TEXT NOT NULL, village TEXT NOT NULL, grp TEXT NOT NULL, priority INTEGER NOT NULL,
  state TEXT NOT NULL, due_at REAL NOT NULL, expires_at REAL NOT NULL, sent_at REAL,
  send_count INTEGER NOT NULL DEFAULT 0, updated_at REAL NOT NULL, reason TEXT NOT NULL DEFAULT '',
  UNIQUE(occurrence_id, device_id)
);
DROP INDEX IF EXISTS deliveries_state;
CREATE INDEX IF NOT EXISTS deliveries_broadcast ON deliveries(broadcast_id);
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, actor TEXT NOT NULL,
  action TEXT NOT NULL, broadcast_id TEXT, detail TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS quiet_hours (
  village TEXT PRIMARY KEY, start TEXT NOT NULL, "end" TEXT NOT NULL
);
"""

# The writer's own automatic checkpoint, a backstop only: the broadcast thread calls
# `checkpoint()` after every tick, so acks recorded on the ingest thread never wait for it.
CHECKPOINT_BACKSTOP_PAGES = 10_000  # ~40 MB of WAL

_DELIVERY_COLS = (
    "command_id, occurrence_id, broadcast_id, device_id, village, grp, priority, state, "
    "due_at, expires_at, sent_at, send_count, updated_at, reason"
)


def _delivery_row(d: Delivery) -> tuple[Any, ...]:
    return (d.command_id, d.occurrence_id, d.broadcast_id, d.device_id, d.village, d.group,
            d.priority, d.state, d.due_at, d.expires_at, d.sent_at, d.send_count, d.updated_at,
            d.reason)


def _delivery(row: sqlite3.Row) -> Delivery:
    return Delivery(
        command_id=row["command_id"], occurrence_id=row["occurrence_id"],
        broadcast_id=row["broadcast_id"], device_id=row["device_id"], village=row["village"],
        group=row["grp"], priority=row["priority"], state=row["state"], due_at=row["due_at"],
        expires_at=row["expires_at"], sent_at=row["sent_at"], send_count=row["send_count"],
        updated_at=row["updated_at"], reason=row["reason"],
    )


class BroadcastStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._db = open_db(path, SCHEMA)
        self._db.row_factory = sqlite3.Row
        self._db.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_BACKSTOP_PAGES}")
        self._ckpt_lock = threading.Lock()
        self._ckpt_db: sqlite3.Connection | None = None

    def close(self) -> None:
        with self._ckpt_lock:
            if self._ckpt_db is not None:
                self._ckpt_db.close()
                self._ckpt_db = None
        with self._lock:
            self._db.close()  # the last connection: SQLite checkpoints and removes the WAL

    def checkpoint(self) -> tuple[int, int]:
        """Copy what the WAL holds into the database file (PASSIVE: it neither waits for nor
        blocks the writer), on a connection of its own so the thread recording delivery states
        never does it. (WAL frames, frames checkpointed); (0, 0) for an in-memory store."""
        if str(self.path) == ":memory:":
            return (0, 0)
        with self._ckpt_lock:
            if self._ckpt_db is None:
                self._ckpt_db = open_db(self.path)
            _busy, frames, done = self._ckpt_db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            return (frames, done)

    def _all(self, sql: str, args: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, tuple(args)).fetchall())

    # --- broadcasts -----------------------------------------------------------
    def insert_broadcast(self, *, id: str, title: str, priority: int, spec: dict[str, Any],
                         created_at: float, created_by: str, next_at: float | None) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO broadcasts (id, title, priority, spec, status, created_at, created_by,"
                " next_at) VALUES (?, ?, ?, ?, 'active', ?, ?, ?)",
                (id, title, priority, json.dumps(spec, ensure_ascii=False), created_at, created_by,
                 next_at),
            )
            self._audit(created_at, created_by, "create", id, title)
            self._db.execute("COMMIT")

    def get_broadcast(self, bid: str) -> sqlite3.Row | None:
        rows = self._all("SELECT * FROM broadcasts WHERE id = ?", (bid,))
        return rows[0] if rows else None

    def list_broadcasts(self, status: str | None = None, limit: int = 200) -> list[sqlite3.Row]:
        if status:
            return self._all("SELECT * FROM broadcasts WHERE status = ? ORDER BY created_at DESC"
                             " LIMIT ?", (status, limit))
        return self._all("SELECT * FROM broadcasts ORDER BY created_at DESC LIMIT ?", (limit,))

    def active_broadcasts(self) -> list[sqlite3.Row]:
        return self._all("SELECT * FROM broadcasts WHERE status = 'active'")

    def record_occurrence(self, *, broadcast_id: str, occurrence_id: str, nominal_at: float,
                          fired_at: float, status: str, note: str, deliveries: list[Delivery],
                          next_at: float | None, expected_next_at: float) -> bool:
        """Insert one occurrence (+ its deliveries) and advance the broadcast, atomically.

        False when another fire already took this occurrence (nothing is written).
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute(
                    "UPDATE broadcasts SET next_at = ?, fired = fired + 1,"
                    " status = CASE WHEN ? IS NULL THEN 'finished' ELSE status END"
                    " WHERE id = ? AND status = 'active' AND next_at = ?",
                    (next_at, next_at, broadcast_id, expected_next_at),
                )
                if cur.rowcount != 1:
                    self._db.execute("ROLLBACK")
                    return False
                seq = self._db.execute("SELECT COUNT(*) FROM occurrences WHERE broadcast_id = ?",
                                       (broadcast_id,)).fetchone()[0]
                self._db.execute(
                    "INSERT INTO occurrences (id, broadcast_id, seq, nominal_at, fired_at, status, note)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (occurrence_id, broadcast_id, seq, nominal_at, fired_at, status, note),
                )
                self._db.executemany(
                    f"INSERT INTO deliveries ({_DELIVERY_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    [_delivery_row(d) for d in deliveries],
                )
            except sqlite3.IntegrityError:
                self._db.execute("ROLLBACK")
                return False
            self._db.execute("COMMIT")
            return True

    def cancel(self, bid: str, ts: float, actor: str) -> bool:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            cur = self._db.execute(
                "UPDATE broadcasts SET status = 'cancelled', cancelled_at = ?, cancelled_by = ?,"
                " next_at = NULL WHERE id = ? AND status != 'cancelled'", (ts, actor, bid))
            if cur.rowcount == 1:
                self._audit(ts, actor, "cancel", bid, "")
            self._db.execute("COMMIT")
            return cur.rowcount == 1

    # --- occurrences & deliveries ---------------------------------------------
    def occurrences(self, bid: str) -> list[sqlite3.Row]:
        return self._all("SELECT * FROM occurrences WHERE broadcast_id = ? ORDER BY seq", (bid,))

    def occurrences_between(self, start: float, end: float) -> list[sqlite3.Row]:
        return self._all(
            "SELECT o.*, b.title, b.priority FROM occurrences o JOIN broadcasts b"
            " ON b.id = o.broadcast_id WHERE o.nominal_at BETWEEN ? AND ? ORDER BY o.nominal_at",
            (start, end))

    def state_counts(self, bid: str) -> list[sqlite3.Row]:
        """(occurrence_id, village, state, n) for every occurrence of a broadcast."""
        return self._all("SELECT occurrence_id, village, state, COUNT(*) AS n FROM deliveries"
                         " WHERE broadcast_id = ? GROUP BY occurrence_id, village, state", (bid,))

    def deliveries_of_occurrences(self, occurrence_ids: list[str]) -> list[Delivery]:
        if not occurrence_ids:
            return []
        marks = ",".join("?" * len(occurrence_ids))
        rows = self._all(f"SELECT {_DELIVERY_COLS} FROM deliveries WHERE occurrence_id IN ({marks})"
                         " ORDER BY device_id", occurrence_ids)
        return [_delivery(r) for r in rows]

    def waiting(self, bid: str) -> list[Delivery]:
        """Deliveries of a broadcast waiting behind another one on their speaker."""
        rows = self._all(f"SELECT {_DELIVERY_COLS} FROM deliveries WHERE broadcast_id = ?"
                         " AND state = 'pending' AND reason LIKE 'waiting_for:%'", (bid,))
        return [_delivery(r) for r in rows]

    def deliveries_of_occurrence(self, occurrence_id: str) -> list[Delivery]:
        rows = self._all(f"SELECT {_DELIVERY_COLS} FROM deliveries WHERE occurrence_id = ?",
                         (occurrence_id,))
        return [_delivery(r) for r in rows]

    def get_delivery(self, command_id: str) -> Delivery | None:
        rows = self._all(f"SELECT {_DELIVERY_COLS} FROM deliveries WHERE command_id = ?",
                         (command_id,))
        return _delivery(rows[0]) if rows else None

    def open_deliveries(self) -> list[Delivery]:
        rows = self._all(f"SELECT {_DELIVERY_COLS} FROM deliveries WHERE state NOT IN"
                         " ('done','failed','rejected','preempted','expired')")
        return [_delivery(r) for r in rows]

    def save_deliveries(self, deliveries: list[Delivery]) -> None:
        if not deliveries:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._save(deliveries)
            self._db.execute("COMMIT")

    def _save(self, deliveries: list[Delivery]) -> None:
        self._db.executemany(
            "UPDATE deliveries SET state = ?, due_at = ?, expires_at = ?, sent_at = ?,"
            " send_count = ?, updated_at = ?, reason = ? WHERE command_id = ?",
            [(d.state, d.due_at, d.expires_at, d.sent_at, d.send_count, d.updated_at, d.reason,
              d.command_id) for d in deliveries],
        )

    # --- audit, quiet hours, media ----------------------------------------------
    def _audit(self, ts: float, actor: str, action: str, bid: str | None, detail: str) -> None:
        self._db.execute("INSERT INTO audit (ts, actor, action, broadcast_id, detail)"
                         " VALUES (?, ?, ?, ?, ?)", (ts, actor, action, bid, detail))

    def audit(self, ts: float, actor: str, action: str, bid: str | None, detail: str = "") -> None:
        with self._lock:
            self._audit(ts, actor, action, bid, detail)

    def audit_log(self, bid: str) -> list[sqlite3.Row]:
        return self._all("SELECT ts, actor, action, detail FROM audit WHERE broadcast_id = ?"
                         " ORDER BY id", (bid,))

    def quiet_hours(self) -> dict[str, tuple[str, str]]:
        return {r["village"]: (r["start"], r["end"])
                for r in self._all('SELECT village, start, "end" FROM quiet_hours')}

    def set_quiet_hours(self, village: str, start: str, end: str) -> None:
        with self._lock:
            self._db.execute('INSERT INTO quiet_hours (village, start, "end") VALUES (?, ?, ?)'
                             ' ON CONFLICT(village) DO UPDATE SET start = excluded.start,'
                             ' "end" = excluded."end"', (village, start, end))
