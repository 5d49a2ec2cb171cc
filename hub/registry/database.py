"""The registry's SQLite file: open it (WAL, migrations, schema), load every row, run one
write as one transaction, and the statements the writes run (an import plan in chunks)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from hub.registry.merge import MergePlan
from hub.registry.model import Device, Group, Village
from hub.registry.sqlite_rows import (
    INSERT_NEW_DEVICE,
    SCHEMA,
    SELECT_DEVICES,
    UPSERT_DEVICE,
    UPSERT_GROUP,
    UPSERT_VILLAGE,
    device_row,
    migrate,
    row_device,
    village_row,
)
from hub.sqlitedb import open_db

Progress = Callable[[int, int], None]  # (done, total)
Work = Callable[[sqlite3.Connection], object]
CHUNK: Final = 5000


@dataclass(frozen=True, slots=True)
class Rows:
    """Every row, as records, and the `data_version` they were read at."""

    villages: dict[str, Village]
    groups: dict[str, Group]
    devices: dict[str, Device]
    data_version: int


class RegistryDb:
    """One connection (any thread; the caller serialises). Not thread-safe on its own."""

    def __init__(self, path: Path) -> None:
        self._db = open_db(path, busy_timeout_ms=10000)
        self._db.execute("PRAGMA foreign_keys=ON")
        migrate(self._db)
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def data_version(self) -> int:
        """Changes when another connection commits."""
        (dv,) = self._db.execute("PRAGMA data_version").fetchone()
        return int(dv)

    def load(self) -> Rows:
        db = self._db
        villages = {r[0]: Village(*r) for r in db.execute(
            "SELECT id, name, lat, lon, quiet_hours FROM villages ORDER BY id")}
        groups = {r[0]: Group(r[0], r[2], r[1]) for r in db.execute(
            "SELECT id, name, village FROM groups ORDER BY id")}
        devices = {r[0]: row_device(r) for r in db.execute(f"{SELECT_DEVICES} ORDER BY id")}
        return Rows(villages, groups, devices, self.data_version())

    def transaction(self, work: Work) -> tuple[int, int]:
        """Run `work` in one IMMEDIATE transaction (rolled back if it raises); the
        `data_version` before and after, so the caller can tell whether another process
        committed since its last look."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            before = self.data_version()
            work(db)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return before, self.data_version()


# ------------------------------------------------------------ statements (inside a transaction)

def upsert_village(db: sqlite3.Connection, village: Village) -> None:
    db.execute(UPSERT_VILLAGE, village_row(village))


def upsert_group(db: sqlite3.Connection, group: Group) -> None:
    db.execute(UPSERT_GROUP, (group.id, group.name, group.village))


def upsert_device(db: sqlite3.Connection, device: Device) -> None:
    db.execute(UPSERT_DEVICE, device_row(device))


def delete_device(db: sqlite3.Connection, device_id: str) -> None:
    db.execute("DELETE FROM devices WHERE id = ?", (device_id,))


def delete_group(db: sqlite3.Connection, group_id: str) -> None:
    db.execute("DELETE FROM groups WHERE id = ?", (group_id,))


def delete_village(db: sqlite3.Connection, village_id: str) -> None:
    db.execute("DELETE FROM villages WHERE id = ?", (village_id,))


def insert_new_device(db: sqlite3.Connection, device: Device) -> Device:
    """Insert unless the id exists; what is stored (theirs if another process wrote it)."""
    if db.execute(INSERT_NEW_DEVICE, device_row(device)).rowcount == 1:
        return device
    row = db.execute(f"{SELECT_DEVICES} WHERE id = ?", (device.id,)).fetchone()
    return row_device(row)


def write_plan(db: sqlite3.Connection, plan: MergePlan, progress: Progress | None) -> None:
    """An import plan's rows in chunks (deletes first), reporting progress as it goes."""
    total = len(plan.delete_devices) + len(plan.upsert_villages) + len(plan.upsert_groups) + len(
        plan.upsert_devices
    )
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    for i in range(0, len(plan.delete_devices), CHUNK):
        chunk = plan.delete_devices[i : i + CHUNK]
        db.executemany("DELETE FROM devices WHERE id = ?", [(k,) for k in chunk])
        tick(len(chunk))
    db.executemany("DELETE FROM groups WHERE id = ?", [(k,) for k in plan.delete_groups])
    db.executemany("DELETE FROM villages WHERE id = ?", [(k,) for k in plan.delete_villages])
    db.executemany(UPSERT_VILLAGE, [village_row(v) for v in plan.upsert_villages])
    db.executemany(UPSERT_GROUP, [(g.id, g.name, g.village) for g in plan.upsert_groups])
    tick(len(plan.upsert_villages) + len(plan.upsert_groups))
    for i in range(0, len(plan.upsert_devices), CHUNK):
        chunk_d = plan.upsert_devices[i : i + CHUNK]
        db.executemany(UPSERT_DEVICE, [device_row(d) for d in chunk_d])
        tick(len(chunk_d))
    if total == 0:
        tick(0)  # nothing to write: still tell the caller it is done
