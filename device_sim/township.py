"""Which devices to simulate: from a township file or from counts (pure apart from reading files).

Read independently of `hub.registry` (a shared mistake could hide otherwise). What
is read from a township file, YAML or CSV (docs/registry.md):

- YAML: `township:` (or the same keys at the top) with `villages:` → each with
  `id`, optional `groups:` (each `id` and `devices:`) and `devices:`; plus a
  top-level `devices:` list for devices in no village. Of a device only `id`,
  `kind`, `name`, `stream_url` (and for lights `lat`, `lon`, `tags.power`) are used; `password` (simulator only) is honoured.
  Devices may also name `village` and `group` themselves.
- CSV: rows whose `kind` is `camera`, `speaker` or `light`, columns `id`, `kind`,
  `village`, `group`, `name`, `stream_url`, `password`, `lat`, `lon`, `tags` (others ignored).
- Street lights also use `lat`/`lon` (their sunset and sunrise) and the tag `power: solar`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

KINDS = ("camera", "speaker", "light")


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    id: str
    kind: str
    village: str | None = None
    group: str | None = None
    name: str | None = None
    password: str | None = None
    stream_url: str | None = None  # cameras report it in heartbeats when given
    lat: float | None = None  # street lights: where the sun rises and sets for them
    lon: float | None = None
    solar: bool = False  # street lights: a solar lamp (tag `power: solar`)


class TownshipError(ValueError):
    pass


def _device(d: Any, village: str | None, group: str | None, where: str) -> DeviceSpec:
    if not isinstance(d, Mapping) or not isinstance(d.get("id"), str):
        raise TownshipError(f"{where}: a device needs an `id`")
    kind = d.get("kind")
    if kind not in KINDS:
        raise TownshipError(f"{where} ({d['id']}): kind must be camera, speaker or light, not {kind!r}")
    pw = d.get("password")
    tags = d.get("tags")
    light = kind == "light"
    return DeviceSpec(id=d["id"], kind=kind, village=d.get("village", village),
                      group=d.get("group", group), name=d.get("name"),
                      password=str(pw) if pw is not None else None,
                      stream_url=d.get("stream_url") if isinstance(d.get("stream_url"), str) else None,
                      lat=_coord(d.get("lat")) if light else None, lon=_coord(d.get("lon")) if light else None,
                      solar=light and isinstance(tags, Mapping) and tags.get("power") == "solar")


def _coord(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def parse_township_yaml(text: str) -> list[DeviceSpec]:
    data = yaml.safe_load(text) or {}
    if isinstance(data, Mapping) and "township" in data:
        data = data["township"]
    if isinstance(data, list):
        data = {"devices": data}
    if not isinstance(data, Mapping):
        raise TownshipError("a township file is a mapping with `villages` and/or `devices`")
    out: list[DeviceSpec] = []
    for vi, v in enumerate(data.get("villages") or []):
        vid = v.get("id") if isinstance(v, Mapping) else None
        if not isinstance(vid, str):
            raise TownshipError(f"villages[{vi}]: needs an `id`")
        for gi, g in enumerate(v.get("groups") or []):
            gid = g.get("id") if isinstance(g, Mapping) else None
            for di, d in enumerate(g.get("devices") or []):
                out.append(_device(d, vid, gid, f"villages[{vi}].groups[{gi}].devices[{di}]"))
        for di, d in enumerate(v.get("devices") or []):
            out.append(_device(d, vid, None, f"villages[{vi}].devices[{di}]"))
    for di, d in enumerate(data.get("devices") or []):
        out.append(_device(d, None, None, f"devices[{di}]"))
    _check_unique(out)
    return out


def parse_township_csv(text: str) -> list[DeviceSpec]:
    out = [
        _csv_device(row)
        for row in csv.DictReader(io.StringIO(text))
        if (row.get("kind") or "").strip() in KINDS and (row.get("id") or "").strip()
    ]
    _check_unique(out)
    return out


def _csv_device(row: dict[str, str]) -> DeviceSpec:
    light = row["kind"].strip() == "light"
    return DeviceSpec(id=row["id"].strip(), kind=row["kind"].strip(),
                      village=(row.get("village") or "").strip() or None,
                      group=(row.get("group") or "").strip() or None,
                      name=(row.get("name") or "").strip() or None,
                      password=(row.get("password") or "").strip() or None,
                      stream_url=(row.get("stream_url") or "").strip() or None,
                      lat=_coord((row.get("lat") or "").strip()) if light else None,
                      lon=_coord((row.get("lon") or "").strip()) if light else None,
                      solar=light and "power=solar" in (row.get("tags") or "").replace(" ", ""))


def load_township(path: str | Path) -> list[DeviceSpec]:
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    return parse_township_csv(text) if p.suffix.lower() == ".csv" else parse_township_yaml(text)


def from_counts(cameras: int, speakers: int, villages: int = 1, lights: int = 0) -> list[DeviceSpec]:
    """`cam-0001…`, `spk-0001…`, `lamp-0001…` spread round-robin over `v01…`, each village with
    groups `g1`, `g2` (every other lamp is solar)."""
    villages = max(1, villages)
    out: list[DeviceSpec] = []
    for kind, prefix, n in (("camera", "cam", cameras), ("speaker", "spk", speakers), ("light", "lamp", lights)):
        width = max(4, len(str(n)))
        for i in range(n):
            v = i % villages
            out.append(DeviceSpec(id=f"{prefix}-{i + 1:0{width}d}", kind=kind,
                                  village=f"v{v + 1:02d}", group=f"v{v + 1:02d}-g{(i // villages) % 2 + 1}",
                                  solar=kind == "light" and i % 2 == 1))
    return out


def load_credentials(path: str | Path) -> dict[str, str]:
    """`{device id: password}` from YAML/JSON, or text lines `id:password` (`#` comments)."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except ValueError:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            data = None
    if isinstance(data, Mapping):
        return {str(k): str(v) for k, v in data.items()}
    creds: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and ":" in line:
            k, _, v = line.partition(":")
            creds[k.strip()] = v.strip()
    return creds


def _check_unique(devices: list[DeviceSpec]) -> None:
    seen: set[str] = set()
    for d in devices:
        if d.id in seen:
            raise TownshipError(f"device id {d.id!r} appears twice")
        seen.add(d.id)
