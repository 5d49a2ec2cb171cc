"""hub.ingest.pipeline.Registrar: unregistered devices recorded off the ingest hot path."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from hub.ingest.pipeline import Ingest, Registrar
from hub.registry.store import Registry


class SlowRegistry:
    """Records `note_unregistered_many` calls; the first one waits until released."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.batches: list[int] = []
        self.release = threading.Event()
        self.done = threading.Event()

    def note_unregistered_many(self, devices: dict[str, str]) -> list[str]:
        self.release.wait(10)
        self.calls += devices.items()
        self.batches.append(len(devices))
        self.done.set()
        return []


def test_a_device_noted_many_times_while_pending_is_written_once() -> None:
    reg = SlowRegistry()
    r = Registrar(reg)
    for _ in range(50):
        r.note("cam-1", "camera")  # returns at once: the write waits on the registrar's thread
    assert reg.calls == []  # nothing written on the caller's thread
    reg.release.set()
    assert reg.done.wait(10)
    assert reg.calls == [("cam-1", "camera")]


def test_ingest_tags_of_an_unregistered_device_and_its_deferred_record(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry.db")
    try:
        ingest = Ingest(cast(Any, SimpleNamespace(registry=registry)))
        tags = ingest.tags("spk-new", "speaker")
        assert tags == {"device": "spk-new", "village": "", "village_group": "", "kind": "speaker"}
        deadline = time.monotonic() + 10
        while registry.get("spk-new") is None and time.monotonic() < deadline:
            time.sleep(0.02)
        dev = registry.get("spk-new")
        assert dev is not None and dev.registered is False and dev.kind == "speaker"
        # the tags with the entry are the ones used before it existed
        assert ingest.tags("spk-new", "speaker") == tags
    finally:
        registry.close()


def test_devices_noted_while_a_write_is_under_way_are_written_together_in_the_next() -> None:
    reg = SlowRegistry()
    r = Registrar(reg)
    r.note("cam-0", "camera")  # the first write starts and waits for `release`
    time.sleep(0.2)
    for i in range(1, 1000):
        r.note(f"cam-{i}", "camera")
    reg.release.set()
    deadline = time.monotonic() + 10
    while len(reg.calls) < 1000 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(reg.calls) == sorted((f"cam-{i}", "camera") for i in range(1000))
    assert len(reg.batches) <= 3  # 1 (or the first few) + the other 999 together, not 1,000 writes


def test_many_unregistered_devices_in_one_transaction_and_bad_ids_refused(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry.db")
    try:
        version = registry.version
        refused = registry.note_unregistered_many({"cam-a": "camera", "bad/id": "camera", "spk-b": "speaker",
                                                   "odd": "toaster"})
        assert sorted(refused) == ["bad/id", "odd"]
        assert registry.version == version + 1  # one new snapshot for the batch
        assert registry.get("cam-a") == registry.note_unregistered("cam-a", "camera")
        assert registry.get("spk-b") is not None and registry.get("spk-b").registered is False  # type: ignore[union-attr]
        registry.close()
        registry = Registry(tmp_path / "registry.db")  # durable
        assert {d.id for d in registry.devices()} == {"cam-a", "spk-b"}
    finally:
        registry.close()
