"""The device registry: the service that reads from an in-memory snapshot and writes to SQLite.

Reads (`get`, `devices`, `villages`, `groups`) never touch SQLite: they look at an
immutable `Snapshot` that every write replaces under a lock (copy-on-write), so ingest
worker threads and the API read concurrently without locking. Each write is checked
(`checks`), run as one transaction (`database`), then published as the next snapshot, so
an import is all or nothing. When started as a service, the registry also picks up commits
made by another process (the `villagehub registry` CLI) within `POLL_S`.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from hub import metrics
from hub.registry import checks, database, township_file
from hub.registry.database import Progress, RegistryDb, Work
from hub.registry.merge import plan_import
from hub.registry.model import KINDS, Device, Group, ImportReport, Kind, Township, Village
from hub.registry.snapshot import Snapshot
from hub.topics import is_valid_id

log = logging.getLogger(__name__)

POLL_S: Final = 2.0


class RegistryError(ValueError):
    """A write the registry refuses; each message names the field (`group: unknown group 'x'`)."""

    def __init__(self, errors: Iterable[str]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(self.errors))


class Registry:
    """Villages, groups and devices. Thread-safe; reads are lock-free dictionary look-ups."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._db = RegistryDb(self.path)
        self._snap = Snapshot(0)
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
            if self._db.data_version() == self._data_version:
                return False
            self._reload()
            log.info("registry: reloaded after an outside change (%d devices)", len(self._snap.devices))
            return True

    def _reload(self) -> None:
        with self._lock:
            rows = self._db.load()
            self._data_version = rows.data_version
            self._snap = self._snap.replaced(rows.villages, rows.groups, rows.devices)
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
        return self._snap.counts()

    def _export_counts(self) -> None:
        for (kind, registered), n in self.counts().items():
            metrics.registry_devices.labels(kind=kind, registered=str(registered).lower()).set(n)

    def township(self, name: str | None = None) -> Township:
        """The registered part of the registry as a Township (what `export` writes)."""
        return self._snap.township(name)

    def export_township(self, name: str | None = None) -> dict[str, Any]:
        return township_file.to_document(self.township(name))

    # ------------------------------------------------------------ single writes

    def upsert_village(self, village: Village) -> Village:
        errors = township_file.village_errors(village)
        if errors:
            raise RegistryError(errors)
        with self._lock:
            self._write(lambda db: database.upsert_village(db, village))
            self._snap = self._snap.changed(villages={village.id: village})
        return village

    def upsert_group(self, group: Group) -> Group:
        with self._lock:
            errors = checks.group_errors(self._snap, group)
            if errors:
                raise RegistryError(errors)
            self._write(lambda db: database.upsert_group(db, group))
            self._snap = self._snap.changed(groups={group.id: group})
        return group

    def upsert_device(self, device: Device) -> Device:
        """Register (or edit) a device. A device with a group and no village gets the group's village."""
        device = dataclasses.replace(device, registered=True)
        with self._lock:
            device, errors = checks.device_errors(self._snap, device)
            if errors:
                raise RegistryError(errors)
            self._write(lambda db: database.upsert_device(db, device))
            self._put_devices({device.id: device})
        return device

    def delete_device(self, device_id: str) -> bool:
        with self._lock:
            if self._snap.get(device_id) is None:
                return False
            self._write(lambda db: database.delete_device(db, device_id))
            _count(self._snap.get(device_id), -1)
            self._snap = self._snap.changed(removed=(device_id,))
        return True

    def delete_group(self, group_id: str) -> bool:
        """Remove an empty group; refused (RegistryError) while devices belong to it."""
        with self._lock:
            if group_id not in self._snap.groups:
                return False
            errors = checks.group_delete_errors(self._snap, group_id)
            if errors:
                raise RegistryError(errors)
            self._write(lambda db: database.delete_group(db, group_id))
            self._snap = self._snap.without_group(group_id)
        return True

    def delete_village(self, village_id: str) -> bool:
        """Remove a village without groups or devices; refused (RegistryError) otherwise."""
        with self._lock:
            if village_id not in self._snap.villages:
                return False
            errors = checks.village_delete_errors(self._snap, village_id)
            if errors:
                raise RegistryError(errors)
            self._write(lambda db: database.delete_village(db, village_id))
            self._snap = self._snap.without_village(village_id)
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
            self._write(lambda db: stored.append(database.insert_new_device(db, device)))
            if stored[0] is not device:  # written elsewhere since our snapshot: keep theirs
                self._put_devices({device_id: stored[0]})
                return stored[0]
            _count(device, +1)
            self._snap = self._snap.with_fresh(device)
        log.info("registry: device %s (%s) publishes but is not registered; kept as unregistered",
                 device_id, kind)
        return device

    def note_unregistered_many(self, devices: Mapping[str, Kind]) -> list[str]:
        """`note_unregistered` for many devices (device → kind) in one transaction and one new
        snapshot: 10,000 first-seen devices after a broker restart cost one commit, not 10,000.
        Devices with an invalid id or kind are skipped and returned (the others are written)."""
        refused = [d for d, k in devices.items() if not is_valid_id(d) or k not in KINDS]
        with self._lock:
            snap = self._snap
            new = [Device(d, k, d, registered=False) for d, k in devices.items()
                   if snap.get(d) is None and d not in refused]
            if not new:
                return refused
            stored: list[Device] = []

            def insert(db: sqlite3.Connection) -> None:
                stored.extend(database.insert_new_device(db, device) for device in new)

            self._write(insert)
            self._put_devices({d.id: d for d in stored})
        ids = [d.id for d in new]
        log.info("registry: %d device(s) publish but are not registered; kept as unregistered: %s%s",
                 len(ids), ", ".join(ids[:10]), " …" if len(ids) > 10 else "")
        return refused

    def _write(self, work: Work) -> None:
        """One transaction. Another process's commit since our last look is not lost: the
        next `refresh()` reloads; one that makes this write inconsistent refuses it."""
        try:
            before, after = self._db.transaction(work)
        except sqlite3.IntegrityError:
            self._reload()
            raise RegistryError(["registry: changed by another process meanwhile; try again"]) from None
        # another process committed since our last look: `refresh()` (the poller) reloads
        self._data_version = after if before == self._data_version else -1

    def _put_devices(self, devices: Mapping[str, Device]) -> None:
        """The next snapshot with these devices added or replaced (the gauges follow)."""
        s = self._snap
        for device in devices.values():
            _count(s.get(device.id), -1)
            _count(device, +1)
        self._snap = s.changed(devices=devices)

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
                self._write(lambda db: database.write_plan(db, plan, progress))
                self._snap = s.replaced(plan.villages, plan.groups, plan.devices)
        report = dataclasses.replace(plan.report, seconds=round(time.perf_counter() - started, 3))
        if not dry_run:
            self._export_counts()
            log.info("registry: imported township: %s", report)
        return report


def _count(d: Device | None, delta: int) -> None:
    if d is not None:
        metrics.registry_devices.labels(kind=d.kind, registered=str(d.registered).lower()).inc(delta)
