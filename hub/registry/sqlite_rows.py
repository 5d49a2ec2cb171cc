"""The registry's SQLite schema and the mapping between rows and records."""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Final

from hub.registry.model import Device, Village

_DEVICES_TABLE: Final = """
CREATE TABLE IF NOT EXISTS {name} (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN ('camera', 'speaker', 'light')),
  name TEXT NOT NULL,
  village TEXT REFERENCES villages(id) DEFERRABLE INITIALLY DEFERRED,
  grp TEXT,
  lat REAL, lon REAL, tags TEXT NOT NULL DEFAULT '{{}}', stream_url TEXT,
  registered INTEGER NOT NULL DEFAULT 1,
  FOREIGN KEY (grp, village) REFERENCES groups(id, village) DEFERRABLE INITIALLY DEFERRED
);"""

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS villages (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, lat REAL, lon REAL, quiet_hours TEXT
);
CREATE TABLE IF NOT EXISTS groups (
  id TEXT PRIMARY KEY, name TEXT NOT NULL,
  village TEXT NOT NULL REFERENCES villages(id) DEFERRABLE INITIALLY DEFERRED,
  UNIQUE (id, village)
);
""" + _DEVICES_TABLE.format(name="devices") + """
CREATE INDEX IF NOT EXISTS groups_village ON groups (village);
CREATE INDEX IF NOT EXISTS devices_village ON devices (village);
CREATE INDEX IF NOT EXISTS devices_group ON devices (grp, village);
PRAGMA user_version = 2;
"""


def migrate(db: sqlite3.Connection) -> None:
    """Registries made before street lights (user_version 1) refuse `kind = 'light'` in their
    CHECK constraint: rebuild the devices table with the current one (SQLite cannot alter a
    CHECK). A no-op on a new or already migrated database."""
    row = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'devices'").fetchone()
    if row is None or "'light'" in row[0]:
        return
    db.execute("PRAGMA foreign_keys=OFF")
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute(_DEVICES_TABLE.format(name="devices_v2"))
        db.execute("INSERT INTO devices_v2 (id, kind, name, village, grp, lat, lon, tags, stream_url, registered) "
                   "SELECT id, kind, name, village, grp, lat, lon, tags, stream_url, registered FROM devices")
        db.execute("DROP TABLE devices")
        db.execute("ALTER TABLE devices_v2 RENAME TO devices")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    finally:
        db.execute("PRAGMA foreign_keys=ON")


def device_row(d: Device) -> tuple[Any, ...]:
    tags = json.dumps(d.tags, ensure_ascii=False, sort_keys=True) if d.tags else "{}"
    return (d.id, d.kind, d.name, d.village, d.group, d.lat, d.lon, tags, d.stream_url, int(d.registered))


def row_device(r: tuple[Any, ...]) -> Device:
    tags = json.loads(r[7]) if r[7] != "{}" else {}
    return Device(r[0], r[1], r[2], r[3], r[4], r[5], r[6], tags, r[8], bool(r[9]))


UPSERT_DEVICE: Final = (
    "INSERT INTO devices (id, kind, name, village, grp, lat, lon, tags, stream_url, registered) "
    "VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET kind=excluded.kind, "
    "name=excluded.name, village=excluded.village, grp=excluded.grp, lat=excluded.lat, "
    "lon=excluded.lon, tags=excluded.tags, stream_url=excluded.stream_url, registered=excluded.registered"
)
INSERT_NEW_DEVICE: Final = (
    "INSERT INTO devices (id, kind, name, village, grp, lat, lon, tags, stream_url, registered) "
    "VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO NOTHING"
)
SELECT_DEVICES: Final = (
    "SELECT id, kind, name, village, grp, lat, lon, tags, stream_url, registered FROM devices"
)
UPSERT_VILLAGE: Final = (
    "INSERT INTO villages (id, name, lat, lon, quiet_hours) VALUES (?,?,?,?,?) "
    "ON CONFLICT(id) DO UPDATE SET name=excluded.name, lat=excluded.lat, lon=excluded.lon, "
    "quiet_hours=excluded.quiet_hours"
)
UPSERT_GROUP: Final = (
    "INSERT INTO groups (id, name, village) VALUES (?,?,?) "
    "ON CONFLICT(id) DO UPDATE SET name=excluded.name, village=excluded.village"
)


def village_row(v: Village) -> tuple[Any, ...]:
    return (v.id, v.name, v.lat, v.lon, v.quiet_hours)
