"""Alerts: raised and cleared by the services themselves, acknowledged by operators.

An alert is identified by a stable `key` (e.g. `offline:cam-001`); raising an open key
again is a no-op, clearing a key that is not open is a no-op. Alerts live in SQLite
(`<data_dir>/hub.db`) so they survive a restart, and every change goes to the event bus.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

from hub import metrics
from hub.eventbus import EventBus

log = logging.getLogger(__name__)

Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    key: str
    device_id: str | None
    village: str | None
    type: str
    severity: str
    message: str
    raised_at: float
    cleared_at: float | None
    acked_by: str | None
    acked_at: float | None

    @property
    def state(self) -> str:
        return "open" if self.cleared_at is None else "cleared"

    def to_json(self) -> dict[str, object]:
        d = asdict(self)
        d["state"] = self.state
        return d


_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT NOT NULL,
  device_id TEXT,
  village TEXT,
  type TEXT NOT NULL,
  severity TEXT NOT NULL,
  message TEXT NOT NULL,
  raised_at REAL NOT NULL,
  cleared_at REAL,
  acked_by TEXT,
  acked_at REAL
);
CREATE INDEX IF NOT EXISTS alerts_open ON alerts(key) WHERE cleared_at IS NULL;
CREATE INDEX IF NOT EXISTS alerts_raised ON alerts(raised_at);
"""
_COLUMNS = "id, key, device_id, village, type, severity, message, raised_at, cleared_at, acked_by, acked_at"


class AlertBook:
    def __init__(self, db_path: Path, bus: EventBus | None = None, village_of: object = None) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(db_path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._bus = bus
        self._village_of = village_of  # Callable[[str], str | None] or None
        self._open: dict[str, Alert] = {
            a.key: a
            for a in (
                Alert(*row)
                for row in self._db.execute(f"SELECT {_COLUMNS} FROM alerts WHERE cleared_at IS NULL")
            )
        }
        metrics.alerts_open.set(len(self._open))
        # Alerts that could not be written (e.g. the data disk is full — itself an alert) live
        # here with a temporary negative id and are written as soon as the database takes them.
        self._unsaved: dict[int, Alert] = {}
        self._next_temp_id = -1

    def _persist_unsaved_locked(self) -> None:
        for temp_id, a in sorted(self._unsaved.items(), reverse=True):
            cur = self._db.execute(
                "INSERT INTO alerts(key, device_id, village, type, severity, message, raised_at, cleared_at,"
                " acked_by, acked_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (a.key, a.device_id, a.village, a.type, a.severity, a.message, a.raised_at, a.cleared_at,
                 a.acked_by, a.acked_at),
            )
            saved = replace(a, id=int(cur.lastrowid or 0))
            del self._unsaved[temp_id]
            if self._open.get(a.key) is a:
                self._open[a.key] = saved
        if not self._unsaved:
            log.info("alerts: the database takes writes again; held alerts saved")

    def _write_locked(self, sql: str, args: tuple[object, ...]) -> sqlite3.Cursor | None:
        """One write; None when the database refuses it (disk full, I/O error)."""
        try:
            if self._unsaved:
                self._persist_unsaved_locked()
            return self._db.execute(sql, args)
        except sqlite3.Error as exc:
            log.warning("alerts: database write failed (%s); holding alerts in memory", exc)
            return None

    def raise_alert(
        self,
        key: str,
        *,
        device_id: str | None,
        type: str,
        severity: str,
        message: str,
        ts: float,
    ) -> Alert | None:
        """Open an alert unless one with this key is open already. Returns the new alert."""
        village = self._village_of(device_id) if (self._village_of and device_id) else None  # type: ignore[operator]
        with self._lock:
            if key in self._open:
                return None
            cur = self._write_locked(
                "INSERT INTO alerts(key, device_id, village, type, severity, message, raised_at)"
                " VALUES (?,?,?,?,?,?,?)",
                (key, device_id, village, type, severity, message, ts),
            )
            if cur is None:
                alert_id = self._next_temp_id
                self._next_temp_id -= 1
            else:
                alert_id = int(cur.lastrowid or 0)
            alert = Alert(alert_id, key, device_id, village, type, severity, message, ts, None, None, None)
            if cur is None:
                self._unsaved[alert_id] = alert
            self._open[key] = alert
            metrics.alerts_open.set(len(self._open))
        if self._bus:
            self._bus.publish("alert", alert.to_json(), ts)
        return alert

    def clear_alert(self, key: str, ts: float) -> Alert | None:
        with self._lock:
            alert = self._open.pop(key, None)
            if alert is None:
                return None
            if alert.id < 0 and alert.id in self._unsaved:
                self._unsaved[alert.id] = replace(self._unsaved[alert.id], cleared_at=ts)
            else:
                self._write_locked("UPDATE alerts SET cleared_at=? WHERE id=?", (ts, alert.id))
            metrics.alerts_open.set(len(self._open))
        if self._bus:
            self._bus.publish("alert_cleared", {"id": alert.id, "key": key, "device_id": alert.device_id}, ts)
        return alert

    def acknowledge(self, alert_id: int, by: str, ts: float) -> Alert | None:
        with self._lock:
            held = self._unsaved.get(alert_id)
            if held is not None and held.acked_at is None:
                held = self._unsaved[alert_id] = replace(held, acked_by=by, acked_at=ts)
                if held.cleared_at is None:
                    self._open[held.key] = held
        if held is not None:
            if self._bus:
                self._bus.publish("alert", held.to_json(), ts)
            return held
        with self._lock:
            cur = self._db.execute(
                "UPDATE alerts SET acked_by=?, acked_at=? WHERE id=? AND acked_at IS NULL", (by, ts, alert_id)
            )
            row = self._db.execute(f"SELECT {_COLUMNS} FROM alerts WHERE id=?", (alert_id,)).fetchone()
            if row is None:
                return None
            alert = Alert(*row)
            if alert.cleared_at is None:
                self._open[alert.key] = alert
        if cur.rowcount and self._bus:
            self._bus.publish("alert", alert.to_json(), ts)
        return alert

    def is_open(self, key: str) -> bool:
        with self._lock:
            return key in self._open

    def open_alerts(self) -> list[Alert]:
        with self._lock:
            return sorted(self._open.values(), key=lambda a: a.raised_at, reverse=True)

    def recent(self, limit: int = 200, since: float | None = None) -> list[Alert]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM alerts WHERE raised_at >= ? ORDER BY raised_at DESC, id DESC LIMIT ?",
                (since or 0.0, limit),
            ).fetchall()
            held = [a for a in self._unsaved.values() if a.raised_at >= (since or 0.0)]
        alerts = held + [Alert(*r) for r in rows]
        alerts.sort(key=lambda a: a.raised_at, reverse=True)
        return alerts[:limit]

    def get(self, alert_id: int) -> Alert | None:
        with self._lock:
            if alert_id in self._unsaved:
                return self._unsaved[alert_id]
            row = self._db.execute(f"SELECT {_COLUMNS} FROM alerts WHERE id=?", (alert_id,)).fetchone()
        return Alert(*row) if row else None

    def close(self) -> None:
        with self._lock:
            self._db.close()
