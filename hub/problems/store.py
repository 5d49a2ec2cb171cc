"""The ledger's database `<VH_DATA_DIR>/problems.db` (SQLite, WAL) and its photo files
`<VH_DATA_DIR>/problems/{problem id}/{photo id}.jpg` (mode 0600, written atomically).

Ids are `P{yyyymmdd}-{nnnn}`: the creation day in the hub's time zone and a sequence per
day, allocated inside the insert's transaction (never reused while a later one exists).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hub.problems.model import PENDING_STATES, Filters, HistoryEntry, Photo, Problem
from hub.sqlitedb import open_db

SCHEMA = """
CREATE TABLE IF NOT EXISTS problems (
  id TEXT PRIMARY KEY, village TEXT NOT NULL, grp TEXT, category TEXT NOT NULL,
  title TEXT NOT NULL, description TEXT NOT NULL DEFAULT '', device_id TEXT, alert_key TEXT,
  owner TEXT, deadline REAL, state TEXT NOT NULL, created_at REAL NOT NULL,
  created_by TEXT NOT NULL, updated_at REAL NOT NULL, closed_at REAL
);
CREATE INDEX IF NOT EXISTS problems_state ON problems(state, deadline);
CREATE INDEX IF NOT EXISTS problems_village ON problems(village);
CREATE INDEX IF NOT EXISTS problems_deadline ON problems(deadline);
CREATE TABLE IF NOT EXISTS history (
  id INTEGER PRIMARY KEY AUTOINCREMENT, problem_id TEXT NOT NULL, ts REAL NOT NULL,
  by TEXT NOT NULL, from_state TEXT, to_state TEXT NOT NULL, note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS history_problem ON history(problem_id, id);
CREATE TABLE IF NOT EXISTS photos (
  id TEXT PRIMARY KEY, problem_id TEXT NOT NULL, stage TEXT NOT NULL, source TEXT NOT NULL,
  device_id TEXT, taken_at REAL NOT NULL, added_at REAL NOT NULL, added_by TEXT NOT NULL,
  bytes INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS photos_problem ON photos(problem_id, added_at);
"""
_COLS = ("id, village, grp, category, title, description, device_id, alert_key, owner, deadline, state,"
         " created_at, created_by, updated_at, closed_at")
_FIELDS = ("id", "village", "group", "category", "title", "description", "device_id", "alert_key", "owner",
           "deadline", "state", "created_at", "created_by", "updated_at", "closed_at")
_PHOTO_COLS = "id, problem_id, stage, source, device_id, taken_at, added_at, added_by, bytes"
_ID_RE = re.compile(r"^P\d{8}-\d{4,9}$")
_PHOTO_ID_RE = re.compile(r"^[0-9a-f]{16}$")


def valid_problem_id(value: str) -> bool:
    return bool(_ID_RE.match(value))


def valid_photo_id(value: str) -> bool:
    return bool(_PHOTO_ID_RE.match(value))


def _private_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically, readable by the hub's user only (0600)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _filters_sql(f: Filters, now: float) -> tuple[str, list[Any]]:
    conds: list[str] = []
    args: list[Any] = []
    if f.state:
        conds.append("state = ?")
        args.append(f.state)
    if f.village:
        conds.append("village = ?")
        args.append(f.village)
    if f.category:
        conds.append("category = ?")
        args.append(f.category)
    pending = ",".join(f"'{s}'" for s in sorted(PENDING_STATES))
    overdue = f"(deadline IS NOT NULL AND deadline < ? AND state IN ({pending}))"
    if f.overdue is True:
        conds.append(overdue)
        args.append(now)
    elif f.overdue is False:
        conds.append(f"NOT {overdue}")
        args.append(now)
    return (" WHERE " + " AND ".join(conds)) if conds else "", args


class ProblemStore:
    def __init__(self, db_path: Path, photo_dir: Path) -> None:
        self.photo_dir = photo_dir
        self.photo_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(self.photo_dir, 0o700)
        self._lock = threading.RLock()
        self._db = open_db(db_path, SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- writes -----------------------------------------------------------------------

    def insert(self, p: Problem, day: str, note: str = "") -> Problem:
        """Insert a new problem (its `id` is allocated here from `day` = yyyymmdd) with the
        creation history entry; returns it with its id."""
        prefix = f"P{day}-"
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT MAX(CAST(substr(id, ?) AS INTEGER)) FROM problems WHERE id LIKE ?",
                    (len(prefix) + 1, prefix + "%"),
                ).fetchone()
                seq = int(row[0] or 0) + 1
                pid = f"{prefix}{seq:04d}"
                self._db.execute(
                    f"INSERT INTO problems ({_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (pid, p.village, p.group, p.category, p.title, p.description, p.device_id, p.alert_key,
                     p.owner, p.deadline, p.state, p.created_at, p.created_by, p.updated_at, p.closed_at),
                )
                self._db.execute(
                    "INSERT INTO history (problem_id, ts, by, from_state, to_state, note) VALUES (?,?,?,?,?,?)",
                    (pid, p.created_at, p.created_by, None, p.state, note),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        got = self.get(pid)
        assert got is not None
        return got

    def transition(self, pid: str, *, expected_state: str, to_state: str, ts: float, by: str, note: str,
                   owner: str | None, deadline: float | None) -> bool:
        """Move `pid` from `expected_state` (compare-and-set); False when its state changed meanwhile."""
        closed_at = ts if to_state == "closed" else None
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute(
                    "UPDATE problems SET state = ?, updated_at = ?, owner = COALESCE(?, owner),"
                    " deadline = COALESCE(?, deadline), closed_at = COALESCE(?, closed_at)"
                    " WHERE id = ? AND state = ?",
                    (to_state, ts, owner, deadline, closed_at, pid, expected_state),
                )
                if cur.rowcount != 1:
                    self._db.execute("ROLLBACK")
                    return False
                self._db.execute(
                    "INSERT INTO history (problem_id, ts, by, from_state, to_state, note) VALUES (?,?,?,?,?,?)",
                    (pid, ts, by, expected_state, to_state, note),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return True

    def add_photo(self, photo: Photo, data: bytes) -> Photo:
        d = self.photo_dir / photo.problem_id
        d.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(d, 0o700)
        _private_write(d / f"{photo.id}.jpg", data)
        with self._lock:
            self._db.execute(
                f"INSERT INTO photos ({_PHOTO_COLS}) VALUES (?,?,?,?,?,?,?,?,?)",
                (photo.id, photo.problem_id, photo.stage, photo.source, photo.device_id, photo.taken_at,
                 photo.added_at, photo.added_by, photo.bytes),
            )
            self._db.execute("UPDATE problems SET updated_at = MAX(updated_at, ?) WHERE id = ?",
                             (photo.added_at, photo.problem_id))
        return photo

    def delete(self, pid: str) -> bool:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            cur = self._db.execute("DELETE FROM problems WHERE id = ?", (pid,))
            self._db.execute("DELETE FROM history WHERE problem_id = ?", (pid,))
            photos = [r[0] for r in self._db.execute("SELECT id FROM photos WHERE problem_id = ?", (pid,))]
            self._db.execute("DELETE FROM photos WHERE problem_id = ?", (pid,))
            self._db.execute("COMMIT")
        d = self.photo_dir / pid
        for photo_id in photos:
            (d / f"{photo_id}.jpg").unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            d.rmdir()
        return cur.rowcount == 1

    # --- reads ------------------------------------------------------------------------

    def _problem(self, row: tuple[Any, ...], photos: Iterable[Photo], history: Iterable[HistoryEntry]) -> Problem:
        fields = dict(zip(_FIELDS, row, strict=True))
        return Problem(**fields, photos=tuple(photos), history=tuple(history))

    def get(self, pid: str) -> Problem | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLS} FROM problems WHERE id = ?", (pid,)).fetchone()
            if row is None:
                return None
            photos = [Photo(*r) for r in self._db.execute(
                f"SELECT {_PHOTO_COLS} FROM photos WHERE problem_id = ? ORDER BY added_at, id", (pid,))]
            history = [HistoryEntry(*r) for r in self._db.execute(
                "SELECT ts, by, from_state, to_state, note FROM history WHERE problem_id = ? ORDER BY id",
                (pid,))]
        return self._problem(row, photos, history)

    def query(self, f: Filters, now: float, limit: int = 100, offset: int = 0) -> tuple[list[Problem], int]:
        """Newest first; with photos and history; and the total that match the filters."""
        where, args = _filters_sql(f, now)
        with self._lock:
            total = int(self._db.execute(f"SELECT COUNT(*) FROM problems{where}", args).fetchone()[0])
            rows = self._db.execute(
                f"SELECT {_COLS} FROM problems{where} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
                [*args, int(limit), int(offset)],
            ).fetchall()
            return self._with_details(rows), total

    def _with_details(self, rows: list[tuple[Any, ...]]) -> list[Problem]:
        if not rows:
            return []
        ids = [r[0] for r in rows]
        photos: dict[str, list[Photo]] = {}
        history: dict[str, list[HistoryEntry]] = {}
        for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
            marks = ",".join("?" * len(chunk))
            for r in self._db.execute(
                f"SELECT {_PHOTO_COLS} FROM photos WHERE problem_id IN ({marks}) ORDER BY added_at, id", chunk
            ):
                photos.setdefault(r[1], []).append(Photo(*r))
            for r in self._db.execute(
                f"SELECT problem_id, ts, by, from_state, to_state, note FROM history"
                f" WHERE problem_id IN ({marks}) ORDER BY id", chunk
            ):
                history.setdefault(r[0], []).append(HistoryEntry(*r[1:]))
        return [self._problem(r, photos.get(r[0], ()), history.get(r[0], ())) for r in rows]

    def deadlines_between(self, start: float, end: float) -> list[Problem]:
        """Problems whose deadline is in [start, end), with their history (the ranking)."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLS} FROM problems WHERE deadline >= ? AND deadline < ? ORDER BY id", (start, end)
            ).fetchall()
            return self._with_details(rows)

    def overdue_ids(self, now: float) -> list[tuple[str, str | None, float, str, str, str | None]]:
        """(id, device_id, deadline, village, title, owner) of the problems overdue at `now`."""
        pending = ",".join(f"'{s}'" for s in sorted(PENDING_STATES))
        with self._lock:
            return [tuple(r) for r in self._db.execute(
                "SELECT id, device_id, deadline, village, title, owner FROM problems"
                f" WHERE deadline IS NOT NULL AND deadline < ? AND state IN ({pending})", (now,))]

    def counts(self, now: float) -> dict[tuple[str, str], dict[str, int]]:
        """{(village, category): {"open", "overdue", "closed"}} over every problem."""
        pending = ",".join(f"'{s}'" for s in sorted(PENDING_STATES))
        with self._lock:
            rows = self._db.execute(
                "SELECT village, category,"
                " SUM(state NOT IN ('closed', 'rejected')),"
                f" SUM(deadline IS NOT NULL AND deadline < ? AND state IN ({pending})),"
                " SUM(state = 'closed')"
                " FROM problems GROUP BY village, category", (now,)
            ).fetchall()
        return {(v, c): {"open": int(o or 0), "overdue": int(d or 0), "closed": int(x or 0)}
                for v, c, o, d, x in rows}

    def photo_path(self, pid: str, photo_id: str) -> Path | None:
        if not (valid_problem_id(pid) and valid_photo_id(photo_id)):
            return None
        with self._lock:
            row = self._db.execute("SELECT 1 FROM photos WHERE id = ? AND problem_id = ?",
                                   (photo_id, pid)).fetchone()
        path = self.photo_dir / pid / f"{photo_id}.jpg"
        return path if row is not None and path.is_file() else None
