"""Snapshot files in `VH_DATA_DIR/snapshots/{device}/`: the latest original, its thumbnail and
a history ring bounded by count and age. Every write is atomic (temporary file + rename),
so a reader never sees half a JPEG.

    latest.jpg, latest_thumb.jpg, latest.json     the newest analysed snapshot
    history/{ms}_{health}.jpg                     originals, newest kept, oldest pruned
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.topics import is_valid_id

_HISTORY_RE = re.compile(r"^(\d{1,16})_([a-z]+)\.jpg$")


@dataclass(frozen=True, slots=True)
class HistoryItem:
    id: int  # milliseconds since the epoch of the snapshot's time
    ts: float
    health: str
    bytes: int


def atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class SnapshotStorage:
    def __init__(
        self,
        root: Path,
        *,
        history_max_count: int = 96,
        history_max_age_s: float = 24 * 3600.0,
        history_min_interval_s: float = 300.0,
    ) -> None:
        self.root = Path(root)
        self.history_max_count = history_max_count
        self.history_max_age_s = history_max_age_s
        self.history_min_interval_s = history_min_interval_s
        self._last_history: dict[str, float] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for d in self.root.iterdir():
            if d.is_dir() and is_valid_id(d.name):
                items = self.history(d.name)
                if items:
                    self._last_history[d.name] = items[0].ts

    def stop(self) -> None:
        pass

    def _dir(self, device_id: str) -> Path:
        if not is_valid_id(device_id):  # the id becomes a path: never trust it
            raise ValueError(f"invalid device id {device_id!r}")
        return self.root / device_id

    def devices(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(d.name for d in self.root.iterdir() if (d / "latest.jpg").is_file())

    # --- writes (one writer per camera at a time: the service serialises them) ---

    def save(
        self, device_id: str, jpeg: bytes, thumbnail: bytes, *, ts: float, health: str,
        meta: dict[str, Any], force_history: bool = False,
    ) -> bool:
        """Store as the latest; also into the history when due. Returns whether it went to history."""
        d = self._dir(device_id)
        (d / "history").mkdir(parents=True, exist_ok=True)
        atomic_write(d / "latest.jpg", jpeg)
        if thumbnail:
            atomic_write(d / "latest_thumb.jpg", thumbnail)
        atomic_write(d / "latest.json", json.dumps({**meta, "ts": ts, "health": health}).encode())
        with self._lock:
            last = self._last_history.get(device_id)
            due = force_history or last is None or ts - last >= self.history_min_interval_s or ts < last
            if due:
                self._last_history[device_id] = ts
        if due:
            atomic_write(d / "history" / f"{round(ts * 1000)}_{health}.jpg", jpeg)
            self.prune(device_id, now=ts)
        return due

    def prune(self, device_id: str, *, now: float) -> int:
        """Drop history items beyond the count or older than the age bound; returns how many."""
        items = self.history(device_id)
        drop = [it for i, it in enumerate(items) if i >= self.history_max_count or now - it.ts > self.history_max_age_s]
        hist = self._dir(device_id) / "history"
        for it in drop:
            (hist / f"{it.id}_{it.health}.jpg").unlink(missing_ok=True)
        return len(drop)

    # --- reads ---

    def latest(self, device_id: str) -> bytes | None:
        return _read(self._dir(device_id) / "latest.jpg")

    def thumbnail(self, device_id: str) -> bytes | None:
        return _read(self._dir(device_id) / "latest_thumb.jpg")

    def latest_meta(self, device_id: str) -> dict[str, Any] | None:
        raw = _read(self._dir(device_id) / "latest.json")
        if raw is None:
            return None
        try:
            meta = json.loads(raw)
        except ValueError:
            return None
        return meta if isinstance(meta, dict) else None

    def history(self, device_id: str) -> list[HistoryItem]:
        """Newest first."""
        hist = self._dir(device_id) / "history"
        if not hist.is_dir():
            return []
        items = []
        for entry in os.scandir(hist):
            m = _HISTORY_RE.match(entry.name)
            if m:
                ms = int(m.group(1))
                items.append(HistoryItem(ms, ms / 1000.0, m.group(2), entry.stat().st_size))
        items.sort(key=lambda it: it.id, reverse=True)
        return items

    def history_item(self, device_id: str, item_id: int) -> bytes | None:
        for it in self.history(device_id):
            if it.id == item_id:
                return _read(self._dir(device_id) / "history" / f"{it.id}_{it.health}.jpg")
        return None


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
