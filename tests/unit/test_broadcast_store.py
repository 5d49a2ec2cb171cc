"""BroadcastStore on a real SQLite file: the delivery table's indexes and who checkpoints the WAL."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace
from pathlib import Path

import pytest

from hub.broadcasts import BroadcastConfig, BroadcastService, BroadcastSpec, SpeakerRef, Targets
from hub.broadcasts.model import Delivery
from hub.broadcasts.store import CHECKPOINT_BACKSTOP_PAGES, BroadcastStore
from hub.clock import ManualClock

pytestmark = pytest.mark.unit


def deliveries(n: int, occ: str = "o1", bid: str = "b1") -> list[Delivery]:
    return [Delivery(command_id=f"c{i:05d}", occurrence_id=occ, broadcast_id=bid,
                     device_id=f"spk{i:05d}", village="v1", group="g1", priority=3,
                     state="pending", due_at=1.0, expires_at=2.0, updated_at=1.0)
            for i in range(n)]


def fire(store: BroadcastStore, ds: list[Delivery], bid: str = "b1") -> None:
    store.insert_broadcast(id=bid, title="t", priority=3, spec={}, created_at=1.0,
                           created_by="op", next_at=1.0)
    assert store.record_occurrence(broadcast_id=bid, occurrence_id=ds[0].occurrence_id,
                                   nominal_at=1.0, fired_at=1.0, status="fired", note="",
                                   deliveries=ds, next_at=None, expected_next_at=1.0)


def rows_in_main_file(path: Path) -> int:
    """Deliveries in the database file itself, not counting what only the WAL holds."""
    db = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return int(db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0])
    except sqlite3.OperationalError:  # the table itself is still only in the WAL
        return 0
    finally:
        db.close()


def test_checkpoint_copies_the_wal_into_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "broadcasts.db"
    store = BroadcastStore(path)
    fire(store, deliveries(500))
    assert rows_in_main_file(path) == 0  # the writer left it to the broadcast thread
    frames, done = store.checkpoint()
    assert frames > 0 and done == frames
    assert rows_in_main_file(path) == 500
    store.close()


def test_the_writer_checkpoints_by_itself_only_as_a_backstop(tmp_path: Path) -> None:
    store = BroadcastStore(tmp_path / "broadcasts.db")
    with store._lock:
        pages = store._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    assert pages == CHECKPOINT_BACKSTOP_PAGES
    store.close()


def test_checkpoint_while_the_writer_holds_a_transaction_neither_waits_nor_loses_it(
        tmp_path: Path) -> None:
    path = tmp_path / "broadcasts.db"
    store = BroadcastStore(path)
    ds = deliveries(100)
    fire(store, ds)
    with store._lock:
        store._db.execute("BEGIN IMMEDIATE")
        store._save([replace(d, state="done") for d in ds])
        store.checkpoint()  # PASSIVE, other connection: returns at once
        store._db.execute("COMMIT")
    store.close()
    again = BroadcastStore(path)
    assert {d.state for d in again.deliveries_of_occurrence("o1")} == {"done"}
    again.close()


def test_an_old_database_loses_the_unused_state_index_and_keeps_its_deliveries(
        tmp_path: Path) -> None:
    path = tmp_path / "broadcasts.db"
    store = BroadcastStore(path)
    fire(store, deliveries(3))
    store.close()
    old = sqlite3.connect(path)  # as a database made before the index was dropped
    old.execute("CREATE INDEX deliveries_state ON deliveries(state)")
    old.close()
    store = BroadcastStore(path)
    with store._lock:
        names = {r[0] for r in store._db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "deliveries_state" not in names
    assert sorted(d.command_id for d in store.open_deliveries()) == ["c00000", "c00001", "c00002"]
    store.close()


def test_the_broadcast_thread_checkpoints_after_its_ticks(tmp_path: Path) -> None:
    path = tmp_path / "broadcasts.db"
    speakers = [SpeakerRef(f"spk{i}", "v1", "g1") for i in range(50)]
    svc = BroadcastService(path, ManualClock(), lambda: speakers, lambda _d: True,
                           lambda *_a: None, config=BroadcastConfig(settle_s=0.0, tick_s=0.01))
    try:
        svc.create(BroadcastSpec(title="t", media={"type": "tts", "text": "x", "lang": "zh"},
                                 targets=Targets(all=True)), "op")
        svc.start()
        deadline = time.monotonic() + 30
        while rows_in_main_file(path) < 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert rows_in_main_file(path) == 50
    finally:
        svc.stop()
