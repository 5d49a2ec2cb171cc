"""The device registry on SQLite, read from an in-memory snapshot.

Reads (`get`, `devices`, `villages`, `groups`) never touch SQLite: they look at an
immutable snapshot that every write replaces under a lock (copy-on-write), so ingest
worker threads and the API read concurrently without locking. SQLite runs in WAL mode;
writes are serialised by one lock and each is one transaction, so an import is all or
nothing. When started as a service, the registry also picks up commits made by another
process (the `villagehub registry` CLI) within `POLL_S`.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from hub import metrics
from hub.registry import township_file
from hub.registry.merge import MergePlan, plan_import
from hub.registry.model import KINDS, Device, Group, ImportReport, Kind, Township, Village
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
from hub.topics import is_valid_id

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (done, total)
POLL_S: Final = 2.0
FRESH_MAX: Final = 1024
CHUNK: Final = 5000

class RegistryError(ValueError):
    """A write the registry refuses; each message names the field (`group: unknown group 'x'`)."""

    def __init__(self, errors: Iterable[str]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(self.errors))


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """What readers see. Never mutated: every write builds a new one.

    Devices noted as unregistered go to the small `fresh` dict (keys never in `base`), so
    a burst of new devices copies a small dict, not the whole fleet; it is folded into
    `base` by the next other write or when it reaches FRESH_MAX.
    """

    version: int
    villages: dict[str, Village] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    base: dict[str, Device] = field(default_factory=dict)
    fresh: dict[str, Device] = field(default_factory=dict)

    @property
    def devices(self) -> dict[str, Device]:
        """Every device (a merged copy while there are fresh ones: not for the hot path)."""
        return {**self.base, **self.fresh} if self.fresh else self.base

    def get(self, device_id: str) -> Device | None:
        d = self.base.get(device_id)
        return self.fresh.get(device_id) if d is None and self.fresh else d

    def values(self) -> Iterator[Device]:
        yield from self.base.values()
        yield from self.fresh.values()


class Registry:
    """Villages, groups and devices. Thread-safe; reads are lock-free dictionary look-ups."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.execute("PRAGMA foreign_keys=ON")
        migrate(self._db)
        self._db.executescript(SCHEMA)
        self._snap = _Snapshot(0)
        self._data_version = -1
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._reload()

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Follow commits made by other processes (the CLI) while the hub runs."""
        if self._poller is None:
            self._stop.clear()
            self._poller = threading.Thread(target=self._poll, name="registry-poll", daemon=True)
            self._poller.start()

    def stop(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
            self._poller = None

    def close(self) -> None:
        self.stop()
        with self._lock:
            self._db.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _poll(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                self.refresh()
            except sqlite3.Error:
                log.warning("registry: could not check %s for outside changes", self.path, exc_info=True)

    def refresh(self) -> bool:
        """Reload the snapshot if another connection committed since the last look."""
        with self._lock:
            (dv,) = self._db.execute("PRAGMA data_version").fetchone()
            if dv == self._data_version:
                return False
            self._reload()
            log.info("registry: reloaded after an outside change (%d devices)", len(self._snap.devices))
            return True

    def _reload(self) -> None:
        with self._lock:
            db = self._db
            villages = {r[0]: Village(*r) for r in db.execute(
                "SELECT id, name, lat, lon, quiet_hours FROM villages ORDER BY id")}
            groups = {r[0]: Group(r[0], r[2], r[1]) for r in db.execute(
                "SELECT id, name, village FROM groups ORDER BY id")}
            devices = {r[0]: row_device(r) for r in db.execute(f"{SELECT_DEVICES} ORDER BY id")}
            (self._data_version,) = db.execute("PRAGMA data_version").fetchone()
            self._snap = _Snapshot(self._snap.version + 1, villages, groups, devices)
        self._export_counts()

    # ------------------------------------------------------------ reads (no SQLite, no lock)

    @property
    def version(self) -> int:
        """Increases on every change; cheap to compare for caches."""
        return self._snap.version

    def get(self, device_id: str) -> Device | None:
        return self._snap.get(device_id)

    def get_village(self, village_id: str) -> Village | None:
        return self._snap.villages.get(village_id)

    def get_group(self, group_id: str) -> Group | None:
        return self._snap.groups.get(group_id)

    def devices(
        self, kind: str | None = None, village: str | None = None, group: str | None = None
    ) -> list[Device]:
        return [
            d for d in self._snap.values()
            if (kind is None or d.kind == kind)
            and (village is None or d.village == village)
            and (group is None or d.group == group)
        ]

    def villages(self) -> list[Village]:
        return list(self._snap.villages.values())

    def groups(self, village: str | None = None) -> list[Group]:
        return [g for g in self._snap.groups.values() if village is None or g.village == village]

    def counts(self) -> dict[tuple[str, bool], int]:
        """(kind, registered) → number of devices."""
        out: dict[tuple[str, bool], int] = {(k, r): 0 for k in KINDS for r in (True, False)}
        for d in self._snap.values():
            out[(d.kind, d.registered)] += 1
        return out

    def _export_counts(self) -> None:
        for (kind, registered), n in self.counts().items():
            metrics.registry_devices.labels(kind=kind, registered=str(registered).lower()).set(n)

    def township(self, name: str | None = None) -> Township:
        """The registered part of the registry as a Township (what `export` writes)."""
        s = self._snap
        return Township(
            name, list(s.villages.values()), list(s.groups.values()),
            [d for d in s.values() if d.registered],
        )

    def export_township(self, name: str | None = None) -> dict[str, Any]:
        return township_file.to_document(self.township(name))

    # ------------------------------------------------------------ single writes

    def upsert_village(self, village: Village) -> Village:
        errors = township_file.village_errors(village)
        if errors:
            raise RegistryError(errors)
        with self._lock:
            self._write(lambda db: db.execute(UPSERT_VILLAGE, village_row(village)))
            self._commit_snapshot(villages={village.id: village})
        return village

    def upsert_group(self, group: Group) -> Group:
        errors = township_file.group_errors(group)
        with self._lock:
            s = self._snap
            if not errors and group.village not in s.villages:
                errors.append(f"village: unknown village {group.village!r}")
            old = s.groups.get(group.id)
            if not errors and old is not None and old.village != group.village:
                moved = [d.id for d in s.values() if d.group == group.id]
                if moved:
                    errors.append(
                        f"village: group {group.id!r} still has devices in village {old.village!r} "
                        f"(e.g. {moved[0]!r}); move them first"
                    )
            if errors:
                raise RegistryError(errors)
            self._write(lambda db: db.execute(UPSERT_GROUP, (group.id, group.name, group.village)))
            self._commit_snapshot(groups={group.id: group})
        return group

    def upsert_device(self, device: Device) -> Device:
        """Register (or edit) a device. A device with a group and no village gets the group's village."""
        device = dataclasses.replace(device, registered=True)
        with self._lock:
            device, errors = self._check_device(device)
            if errors:
                raise RegistryError(errors)
            self._write(lambda db: db.execute(UPSERT_DEVICE, device_row(device)))
            self._commit_snapshot(devices={device.id: device})
        return device

    def delete_device(self, device_id: str) -> bool:
        with self._lock:
            if self._snap.get(device_id) is None:
                return False
            self._write(lambda db: db.execute("DELETE FROM devices WHERE id = ?", (device_id,)))
            self._commit_snapshot(removed=(device_id,))
        return True

    def delete_group(self, group_id: str) -> bool:
        """Remove an empty group; refused (RegistryError) while devices belong to it."""
        with self._lock:
            s = self._snap
            if group_id not in s.groups:
                return False
            members = [d.id for d in s.values() if d.group == group_id]
            if members:
                raise RegistryError([f"group: {group_id!r} still has {len(members)} device(s), e.g. "
                                     f"{members[0]!r}; move or remove them first"])
            self._write(lambda db: db.execute("DELETE FROM groups WHERE id = ?", (group_id,)))
            groups = {k: g for k, g in s.groups.items() if k != group_id}
            self._snap = _Snapshot(s.version + 1, s.villages, groups, s.base, s.fresh)
        return True

    def delete_village(self, village_id: str) -> bool:
        """Remove a village without groups or devices; refused (RegistryError) otherwise."""
        with self._lock:
            s = self._snap
            if village_id not in s.villages:
                return False
            used = [g.id for g in s.groups.values() if g.village == village_id]
            used += [d.id for d in s.values() if d.village == village_id]
            if used:
                raise RegistryError([f"village: {village_id!r} still has {len(used)} group(s) or "
                                     f"device(s), e.g. {used[0]!r}; move or remove them first"])
            self._write(lambda db: db.execute("DELETE FROM villages WHERE id = ?", (village_id,)))
            villages = {k: v for k, v in s.villages.items() if k != village_id}
            self._snap = _Snapshot(s.version + 1, villages, s.groups, s.base, s.fresh)
        return True

    def note_unregistered(self, device_id: str, kind: Kind) -> Device:
        """A device that publishes but is not registered: kept as `registered=False`, never dropped.

        Idempotent; a known device (registered or not) costs one dictionary look-up. Never
        overwrites a row another process (the CLI, another ingest process) wrote meanwhile.
        """
        known = self._snap.get(device_id)
        if known is not None:
            return known
        if not is_valid_id(device_id) or kind not in KINDS:
            raise RegistryError([f"id: not a valid device id or kind ({device_id!r}, {kind!r})"])
        with self._lock:
            known = self._snap.get(device_id)
            if known is not None:
                return known
            device = Device(device_id, kind, device_id, registered=False)
            stored: list[Device] = []

            def work(db: sqlite3.Connection) -> None:
                if db.execute(INSERT_NEW_DEVICE, device_row(device)).rowcount == 1:
                    stored.append(device)
                else:  # written elsewhere since our snapshot: keep theirs
                    row = db.execute(f"{SELECT_DEVICES} WHERE id = ?", (device_id,)).fetchone()
                    stored.append(row_device(row))

            self._write(work)
            if stored[0] is not device:
                self._commit_snapshot(devices={device_id: stored[0]})
                return stored[0]
            self._add_fresh(device)
        log.info("registry: device %s (%s) publishes but is not registered; kept as unregistered",
                 device_id, kind)
        return device

    def _check_device(self, d: Device) -> tuple[Device, list[str]]:
        errors = township_file.device_errors(d)
        s = self._snap
        if d.group is not None:
            group = s.groups.get(d.group)
            if group is None:
                errors.append(f"group: unknown group {d.group!r}")
            elif d.village is None:
                d = dataclasses.replace(d, village=group.village)
            elif d.village != group.village:
                errors.append(f"group: group {d.group!r} belongs to village {group.village!r}, "
                              f"not {d.village!r}")
        if d.village is not None and d.village not in s.villages:
            errors.append(f"village: unknown village {d.village!r}")
        return d, errors

    def _write(self, work: Callable[[sqlite3.Connection], object]) -> None:
        """One transaction. Another process's commit since our last look is not lost: the
        next `refresh()` reloads; one that makes this write inconsistent refuses it."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            (before,) = db.execute("PRAGMA data_version").fetchone()
            work(db)
            db.execute("COMMIT")
        except sqlite3.IntegrityError:
            db.execute("ROLLBACK")
            self._reload()
            raise RegistryError(["registry: changed by another process meanwhile; try again"]) from None
        except BaseException:
            db.execute("ROLLBACK")
            raise
        outside_change = before != self._data_version
        (self._data_version,) = db.execute("PRAGMA data_version").fetchone()
        if outside_change:
            self._data_version = -1  # `refresh()` (the poller) reloads

    def _add_fresh(self, device: Device) -> None:
        s = self._snap
        _count(device, +1)
        fresh = {**s.fresh, device.id: device}
        if len(fresh) >= FRESH_MAX:
            self._snap = _Snapshot(s.version + 1, s.villages, s.groups, {**s.base, **fresh})
        else:
            self._snap = _Snapshot(s.version + 1, s.villages, s.groups, s.base, fresh)

    def _commit_snapshot(
        self,
        *,
        villages: Mapping[str, Village] | None = None,
        groups: Mapping[str, Group] | None = None,
        devices: Mapping[str, Device] | None = None,
        removed: Iterable[str] = (),
    ) -> None:
        s = self._snap
        new_devices, fresh = s.base, s.fresh
        if devices or removed:
            new_devices, fresh = {**s.base, **s.fresh}, {}
            for device in (devices or {}).values():
                _count(new_devices.get(device.id), -1)
                _count(device, +1)
                new_devices[device.id] = device
            for device_id in removed:
                _count(new_devices.pop(device_id, None), -1)
        self._snap = _Snapshot(
            s.version + 1,
            {**s.villages, **villages} if villages else s.villages,
            {**s.groups, **groups} if groups else s.groups,
            new_devices,
            fresh,
        )

    # ------------------------------------------------------------ import

    def import_township(
        self,
        doc: Township | Mapping[str, Any],
        *,
        replace: bool = False,
        progress: Progress | None = None,
        dry_run: bool = False,
    ) -> ImportReport:
        """Merge (or with `replace=True`, replace) the registry with a township: all or nothing.

        `doc` is a parsed Township or a YAML-shaped mapping. With `replace`, registered
        villages, groups and devices missing from the file are removed; unregistered
        devices are always kept. Raises TownshipFileError or RegistryError, changing nothing.
        `dry_run` checks everything and reports what would change, writing nothing.
        """
        started = time.perf_counter()
        town = doc if isinstance(doc, Township) else township_file.from_mapping(doc)
        with self._lock:
            s = self._snap
            plan = plan_import(s.villages, s.groups, s.devices, town, replace=replace)
            if plan.errors:
                raise RegistryError(plan.errors[: township_file.MAX_ERRORS])
            if not dry_run:
                self._write(lambda db: _write_plan(db, plan, progress))
                self._snap = _Snapshot(s.version + 1, plan.villages, plan.groups, plan.devices)
        report = dataclasses.replace(plan.report, seconds=round(time.perf_counter() - started, 3))
        if not dry_run:
            self._export_counts()
            log.info("registry: imported township: %s", report)
        return report


def _write_plan(db: sqlite3.Connection, plan: MergePlan, progress: Progress | None) -> None:
    """The plan's rows in chunks (deletes first), reporting progress as it goes."""
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


def _count(d: Device | None, delta: int) -> None:
    if d is not None:
        metrics.registry_devices.labels(kind=d.kind, registered=str(d.registered).lower()).inc(delta)
