"""How the hub opens its own SQLite databases (registry, schedules, alerts' neighbours, lights,
problems, the embedded time-series store): one place for the connection settings.

Autocommit (`isolation_level=None`: transactions are explicit `BEGIN`s), usable from several
threads (callers hold their own lock), WAL with `synchronous=NORMAL` (durable at checkpoints,
never corrupt), and a busy timeout so a second process (a CLI) waits instead of failing.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_db(path: Path | str, schema: str | None = None, *, busy_timeout_ms: int = 5000) -> sqlite3.Connection:
    """A connection to `path` (its folder made when missing; `:memory:` as it is), with `schema`
    (a script of `CREATE … IF NOT EXISTS`) applied."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    if schema:
        db.executescript(schema)
    return db
