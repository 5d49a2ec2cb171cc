"""Street lights in the registry: `kind: light` in township files (YAML, CSV), the store, filters,
and registries made before lights existed (their CHECK constraint is migrated)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hub.registry.model import Device, Group, Township, Village
from hub.registry.store import Registry
from hub.registry.township_file import parse_township, to_csv, to_yaml

pytestmark = pytest.mark.unit

YAML = """
township:
  name: 示范乡
  villages:
    - id: lijia
      name: 李家村
      groups:
        - id: lijia-g1
          name: 第一村民组
          devices:
            - {id: lamp-lijia-01, kind: light, name: 村道路灯1, lat: 31.06, lon: 114.39, tags: {power: solar}}
      devices:
        - {id: cam-1, kind: camera, name: 村口}
"""

OLD_SCHEMA = """
CREATE TABLE villages (id TEXT PRIMARY KEY, name TEXT NOT NULL, lat REAL, lon REAL, quiet_hours TEXT);
CREATE TABLE groups (id TEXT PRIMARY KEY, name TEXT NOT NULL,
  village TEXT NOT NULL REFERENCES villages(id) DEFERRABLE INITIALLY DEFERRED, UNIQUE (id, village));
CREATE TABLE devices (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN ('camera', 'speaker')),
  name TEXT NOT NULL,
  village TEXT REFERENCES villages(id) DEFERRABLE INITIALLY DEFERRED,
  grp TEXT,
  lat REAL, lon REAL, tags TEXT NOT NULL DEFAULT '{}', stream_url TEXT,
  registered INTEGER NOT NULL DEFAULT 1,
  FOREIGN KEY (grp, village) REFERENCES groups(id, village) DEFERRABLE INITIALLY DEFERRED
);
INSERT INTO villages VALUES ('lijia', '李家村', 31.06, 114.39, NULL);
INSERT INTO devices (id, kind, name, village) VALUES ('cam-old', 'camera', '老摄像头', 'lijia');
PRAGMA user_version = 1;
"""


def test_yaml_township_with_a_light_parses_and_round_trips_through_csv() -> None:
    town = parse_township(YAML, filename="t.yaml")
    lamp = next(d for d in town.devices if d.id == "lamp-lijia-01")
    assert (lamp.kind, lamp.village, lamp.group, lamp.tags) == ("light", "lijia", "lijia-g1", {"power": "solar"})
    again = parse_township(to_csv(town), filename="t.csv")
    assert next(d for d in again.devices if d.id == "lamp-lijia-01") == lamp
    assert next(d for d in parse_township(to_yaml(town), filename="t.yaml").devices
                if d.id == "lamp-lijia-01") == lamp


def test_unknown_kind_error_names_light_among_the_allowed() -> None:
    from hub.registry.township_file import TownshipFileError

    with pytest.raises(TownshipFileError, match="must be camera, speaker or light"):
        parse_township(YAML.replace("kind: light", "kind: lamp"), filename="t.yaml")


def test_registry_stores_and_filters_lights(tmp_path: Path) -> None:
    town = Township("t", [Village("lijia", "李家村")], [Group("lijia-g1", "lijia", "一组")], [
        Device("lamp-1", "light", "路灯", "lijia", "lijia-g1", 31.0, 114.0),
        Device("cam-1", "camera", "村口", "lijia"),
    ])
    with Registry(tmp_path / "r.db") as reg:
        reg.import_township(town)
    with Registry(tmp_path / "r.db") as reg:
        assert [d.id for d in reg.devices(kind="light")] == ["lamp-1"]
        assert reg.get("lamp-1") == town.devices[0]
        stray = reg.note_unregistered("lamp-stray", "light")
        assert (stray.kind, stray.registered) == ("light", False)


def test_a_registry_made_before_lights_is_migrated_and_keeps_its_devices(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.close()
    with Registry(path) as reg:
        assert reg.get("cam-old") is not None and reg.get("cam-old").village == "lijia"  # type: ignore[union-attr]
        reg.import_township(Township(None, [Village("lijia", "李家村", 31.06, 114.39)], [],
                                     [Device("lamp-1", "light", "路灯", "lijia")]))
        assert reg.get("lamp-1") is not None
    with Registry(path) as reg:  # the second open finds nothing to migrate
        assert {d.id for d in reg.devices()} == {"cam-old", "lamp-1"}
    names = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"devices_village", "devices_group"} <= names
