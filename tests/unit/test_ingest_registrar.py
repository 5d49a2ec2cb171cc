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
    """Counts `note_unregistered` calls; the first one waits until released."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.release = threading.Event()
        self.done = threading.Event()

    def note_unregistered(self, device_id: str, kind: str) -> None:
        self.release.wait(10)
        self.calls.append((device_id, kind))
        self.done.set()


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
