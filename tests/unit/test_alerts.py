"""AlertBook: raise/clear/acknowledge, idempotent keys, and alerts kept when the disk is full."""

from pathlib import Path

import pytest

from hub.alerts import AlertBook
from hub.clock import SystemClock
from hub.eventbus import EventBus

pytestmark = pytest.mark.unit


def test_raising_an_open_key_again_is_a_no_op_and_clearing_closes_it(tmp_path: Path) -> None:
    book = AlertBook(tmp_path / "hub.db", EventBus(clock=SystemClock()))
    first = book.raise_alert("offline:cam-1", device_id="cam-1", type="offline", severity="warning",
                             message="x", ts=1.0)
    assert first is not None
    assert book.raise_alert("offline:cam-1", device_id="cam-1", type="offline", severity="warning",
                            message="x", ts=2.0) is None
    assert book.clear_alert("offline:cam-1", 3.0) is not None
    assert book.clear_alert("offline:cam-1", 4.0) is None
    assert [a.state for a in book.recent()] == ["cleared"]


def test_alerts_survive_a_restart(tmp_path: Path) -> None:
    book = AlertBook(tmp_path / "hub.db")
    book.raise_alert("tamper:cam-1", device_id="cam-1", type="tamper", severity="critical", message="x", ts=1.0)
    book.close()
    again = AlertBook(tmp_path / "hub.db")
    assert again.is_open("tamper:cam-1")


def test_alert_raised_while_the_database_is_full_is_held_in_memory_and_saved_later(tmp_path: Path) -> None:
    book = AlertBook(tmp_path / "hub.db")
    book.raise_alert("a", device_id=None, type="t", severity="info", message="fill", ts=1.0)
    pages = book._db.execute("PRAGMA page_count").fetchone()[0]
    book._db.execute(f"PRAGMA max_page_count={pages}")  # SQLite now answers "database or disk is full"
    big = "x" * 100_000
    alert = book.raise_alert("store:spool_full", device_id=None, type="store", severity="critical",
                             message=big, ts=2.0)
    assert alert is not None and alert.id < 0 and book.is_open("store:spool_full")
    assert any(a.key == "store:spool_full" for a in book.recent())
    acked = book.acknowledge(alert.id, "duty", 3.0)
    assert acked is not None and acked.acked_by == "duty"
    book._db.execute("PRAGMA max_page_count=1073741823")  # space is back
    book.raise_alert("b", device_id=None, type="t", severity="info", message="y", ts=4.0)
    saved = [a for a in book.recent() if a.key == "store:spool_full"]
    assert len(saved) == 1 and saved[0].id > 0 and saved[0].acked_by == "duty"
    assert book.open_alerts()[-1].id > 0
