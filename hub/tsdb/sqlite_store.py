"""Embedded time-series store in SQLite (demo and small sites: `VH_INFLUX_URL` unset).

It receives the very line-protocol lines InfluxDB would, parses them back and behaves like
InfluxDB 1.x where the hub can tell: a point is identified by measurement + tag set + time
(writing it again merges its fields, so retries are harmless); a field keeps the type it was
first written with (a conflicting line is refused); a batch with bad lines stores the good
ones and raises RejectedBatchError naming the first bad line ("partial write"); buckets of
`series()` are aligned to the epoch like `GROUP BY time()`; `mean`/`sum` of a boolean field
counts it as 1/0.

One file `timeseries.sqlite3` in `VH_DATA_DIR`, WAL mode, one connection behind a lock
(thread-safe; fine for the few thousand points per second of a small site).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

from hub.clock import Clock
from hub.messages import Point
from hub.sqlitedb import open_db
from hub.tsdb.base import Bucket, RejectedBatchError, SeriesQuery, TransientStoreError
from hub.tsdb.influxql import retention_seconds
from hub.tsdb.lineparse import LineParseError, parse_line_ns

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    measurement TEXT NOT NULL,
    tags TEXT NOT NULL,          -- JSON object, keys sorted: the series key
    time_ns INTEGER NOT NULL,
    device TEXT,                 -- the `device` tag, the usual filter
    fields TEXT NOT NULL,        -- JSON object
    PRIMARY KEY (measurement, tags, time_ns)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS points_by_time ON points (measurement, time_ns);
CREATE INDEX IF NOT EXISTS points_by_device ON points (measurement, device, time_ns);
CREATE TABLE IF NOT EXISTS field_types (
    measurement TEXT NOT NULL,
    field TEXT NOT NULL,
    type TEXT NOT NULL,
    PRIMARY KEY (measurement, field)
) WITHOUT ROWID;
"""

_UPSERT = """
INSERT INTO points (measurement, tags, time_ns, device, fields) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (measurement, tags, time_ns) DO UPDATE SET fields = json_patch(fields, excluded.fields)
"""

_AGG_SQL = {"mean": "AVG(v)", "min": "MIN(v)", "max": "MAX(v)", "sum": "TOTAL(v)", "count": "COUNT(v)"}


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    return "string"


def _json_path(name: str) -> str:
    if '"' in name:
        raise ValueError(f"names with a double quote cannot be queried here: {name!r}")
    return f'$."{name}"'


def _where(
    measurement: str, tags: dict[str, str] | tuple[tuple[str, str], ...] | None,
    start: float | None, end: float | None,
) -> tuple[str, list[Any]]:
    conds: list[str] = ["measurement = ?"]
    args: list[Any] = [measurement]
    if start is not None:
        conds.append("time_ns >= ?")
        args.append(round(start * 1_000_000) * 1_000)
    if end is not None:
        conds.append("time_ns < ?")
        args.append(round(end * 1_000_000) * 1_000)
    for k, v in (tags.items() if isinstance(tags, dict) else tags or ()):
        if k == "device":
            conds.append("device = ?")
        else:
            conds.append("json_extract(tags, ?) = ?")
            args.append(_json_path(k))
        args.append(v)
    return " AND ".join(conds), args


class SqliteStore:
    name = "sqlite"

    def __init__(
        self, path: Path | str, retention: str | None = None, *, clock: Clock
    ) -> None:
        """`retention` as `VH_INFLUX_RETENTION` (`0s`/None: keep forever, `90d`, `52w`):
        older points are deleted at setup and then every PRUNE_EVERY_S of writes."""
        self.path = Path(path)
        self.retention_s = retention_seconds(retention)
        self.clock = clock
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._types: dict[tuple[str, str], str] = {}
        self._pruned_at: float | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            db = open_db(self.path, _SCHEMA)
            self._types = {
                (m, f): t for m, f, t in db.execute("SELECT measurement, field, type FROM field_types")
            }
            self._db = db
        return self._db

    def setup(self) -> None:
        with self._lock:
            self._conn()
            self._prune()

    def _prune(self) -> int:
        """Delete points past the retention (caller holds the lock); returns how many."""
        now = self.clock.monotonic()
        self._pruned_at = now
        if not self.retention_s:
            return 0
        db = self._conn()
        cutoff = round((self.clock.now() - self.retention_s) * 1e9)
        deleted = 0
        for (m,) in db.execute("SELECT DISTINCT measurement FROM field_types").fetchall():
            deleted += db.execute(
                "DELETE FROM points WHERE measurement = ? AND time_ns < ?", (m, cutoff)
            ).rowcount
        if deleted:
            log.info("SQLite store: %d points older than the retention deleted", deleted)
        return deleted

    def ping(self) -> bool:
        try:
            with self._lock:
                self._conn().execute("SELECT 1").fetchone()
            return True
        except sqlite3.Error:
            return False

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def write_lines(self, lines: list[str]) -> None:
        rows: list[tuple[str, str, int, str | None, str]] = []
        new_types: list[tuple[str, str, str]] = []
        errors: list[str] = []
        with self._lock:
            db = self._conn()
            pending: dict[tuple[str, str], str] = {}
            for line in lines:
                try:
                    p, time_ns = parse_line_ns(line)
                except LineParseError as err:
                    errors.append(f"unable to parse '{line[:200]}': {err}")
                    continue
                conflict = None
                for k, v in p.fields.items():
                    want = _type_name(v)
                    have = self._types.get((p.measurement, k)) or pending.get((p.measurement, k))
                    if have is not None and have != want:
                        conflict = (
                            f'field type conflict: input field "{k}" on measurement '
                            f'"{p.measurement}" is type {want}, already exists as type {have}'
                        )
                        break
                if conflict:
                    errors.append(conflict)
                    continue
                for k, v in p.fields.items():
                    key = (p.measurement, k)
                    if key not in self._types and key not in pending:
                        pending[key] = _type_name(v)
                        new_types.append((p.measurement, k, pending[key]))
                tags = json.dumps(dict(sorted(p.tags.items())), ensure_ascii=False)
                rows.append((p.measurement, tags, time_ns, p.tags.get("device"),
                             json.dumps(p.fields, ensure_ascii=False)))
            try:
                db.execute("BEGIN IMMEDIATE")
                db.executemany("INSERT OR IGNORE INTO field_types VALUES (?, ?, ?)", new_types)
                db.executemany(_UPSERT, rows)
                db.execute("COMMIT")
            except sqlite3.Error as err:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise TransientStoreError(f"SQLite write failed: {err}") from err
            self._types.update(pending)
            if self._pruned_at is None or self.clock.monotonic() - self._pruned_at >= PRUNE_EVERY_S:
                try:
                    self._prune()
                except sqlite3.Error:
                    log.exception("SQLite store: pruning old points failed")
        if errors:
            raise RejectedBatchError(f"partial write: {errors[0]} dropped={len(errors)}", 400)

    def series(self, q: SeriesQuery) -> list[Bucket]:
        width = round(q.every * 1e9)
        if width <= 0:
            raise ValueError("bucket width must be positive")
        where, args = _where(q.measurement, q.tags, q.start, q.end)
        sub = (
            f"SELECT time_ns, json_extract(fields, ?) AS v FROM points WHERE {where}"
        )
        args = [_json_path(q.field), *args]
        if q.aggregate == "last":
            sql = (
                f"SELECT (time_ns / {width}) * {width} AS b, v, MAX(time_ns) FROM ({sub}) "
                "WHERE typeof(v) IN ('integer', 'real') GROUP BY b ORDER BY b"
            )
        elif q.aggregate in _AGG_SQL:
            sql = (
                f"SELECT (time_ns / {width}) * {width} AS b, {_AGG_SQL[q.aggregate]} FROM ({sub}) "
                "WHERE typeof(v) IN ('integer', 'real') GROUP BY b ORDER BY b"
            )
        else:
            raise ValueError(f"unknown aggregate {q.aggregate!r}")
        with self._lock:
            rows = self._conn().execute(sql, args).fetchall()
        return [Bucket(start=b / 1e9, value=None if v is None else float(v)) for b, v, *_ in rows]

    def read_points(
        self,
        measurement: str,
        tags: dict[str, str] | None = None,
        start: float | None = None,
        end: float | None = None,
        limit: int = 10_000,
    ) -> list[Point]:
        where, args = _where(measurement, tags, start, end)
        sql = f"SELECT tags, fields, time_ns FROM points WHERE {where} ORDER BY time_ns LIMIT ?"
        with self._lock:
            rows = self._conn().execute(sql, [*args, int(limit)]).fetchall()
        return [Point(measurement, json.loads(t), json.loads(f), ns / 1e9) for t, f, ns in rows]
