"""DurableWriter against the real influxd, a loopback HTTP stub (503/429) and SQLite."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hub import metrics
from hub.clock import ManualClock, SystemClock
from hub.messages import Point
from hub.tsdb.base import TransientStoreError
from hub.tsdb.influx_v1 import InfluxV1Store
from hub.tsdb.lineprotocol import encode_point
from hub.tsdb.sqlite_store import SqliteStore
from hub.tsdb.writer import DurableWriter, next_delay
from tests.servers import InfluxServer, free_port

pytestmark = pytest.mark.component

T0 = 1_764_400_000.0


def heartbeat(device: str, seq: int) -> str:
    return encode_point(
        Point("heartbeat", {"device": device, "kind": "camera", "village": "v01"},
              {"seq": seq, "temp_c": 40.0 + seq % 7}, T0 + seq)
    )


def metric(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def wait_for(cond: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


class States:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, state: str, message: str) -> None:
        self.seen.append((state, message))

    @property
    def names(self) -> list[str]:
        return [s for s, _ in self.seen]


# -- a loopback stub of InfluxDB's /write: scripted failures, then success -----------------


class StubInflux:
    """Answers /write from a script of (status, Retry-After) then 204; records every request."""

    def __init__(self, script: list[tuple[int, str | None]], delay_s: float = 0.0) -> None:
        self.script = list(script)
        self.delay_s = delay_s
        self.attempts: list[float] = []  # monotonic time of each /write
        self.written: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _reply(self, status: int, body: bytes = b"", retry_after: str | None = None) -> None:
                self.send_response(status)
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._reply(204)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if not self.path.startswith("/write"):
                    self._reply(200, b'{"results":[{}]}')
                    return
                stub.attempts.append(time.monotonic())
                time.sleep(stub.delay_s)
                if stub.script:
                    status, retry_after = stub.script.pop(0)
                    self._reply(status, b'{"error":"busy"}', retry_after)
                    return
                stub.written.extend(body.decode().split("\n"))
                self._reply(204)

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> StubInflux:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def writers() -> Iterator[list[DurableWriter]]:
    """Writers a test creates; all stopped at the end even when the test fails."""
    made: list[DurableWriter] = []
    yield made
    for w in made:
        w.stop(5)


# -- the tests ------------------------------------------------------------------------------


def test_influxdb_killed_mid_stream_then_restarted_keeps_every_heartbeat_exactly_once(
    fresh_influxdb: InfluxServer, tmp_path: Path, writers: list[DurableWriter]
) -> None:
    store = InfluxV1Store(fresh_influxdb.url, timeout=1.0)
    store.setup()
    stored_before = metric("vh_points_stored_total", measurement="heartbeat")
    states = States()
    writer = DurableWriter(store, tmp_path / "spool", clock=SystemClock(), batch_size=500, flush_s=0.05,
                           on_state=states, backoff_initial=0.1, backoff_max=0.5)
    writers.append(writer)
    writer.start()
    devices, seqs = [f"cam-{i:03d}" for i in range(5)], 600
    progress = threading.Event()

    def produce() -> None:
        for seq in range(seqs):
            lines = [heartbeat(d, seq) for d in devices]
            if seq % 2:
                writer.submit(lines)
            else:
                assert writer.write_durable(lines, timeout=10)
            if seq == 150:
                progress.set()
            time.sleep(0.004)

    producer = threading.Thread(target=produce)
    producer.start()
    assert progress.wait(10)
    fresh_influxdb.kill()
    time.sleep(0.5)
    fresh_influxdb.restart()
    producer.join(30)
    assert writer.flush(10)
    wait_for(lambda: writer.spool.is_empty() and writer.state == "ok", 30)

    rows = fresh_influxdb.rows("SELECT seq FROM heartbeat GROUP BY device")
    got = sorted((str(r["device"]), int(r["seq"])) for r in rows)  # type: ignore[call-overload]
    assert got == sorted((d, s) for d in devices for s in range(seqs))
    assert "spooling" in states.names and states.names[-1] == "ok"
    # accounting: all stored (a batch InfluxDB took just before dying may be counted twice)
    assert metric("vh_points_stored_total", measurement="heartbeat") - stored_before >= len(got)
    assert metric("vh_points_spooled", measurement="heartbeat") == 0


def test_batch_with_one_bad_line_keeps_the_good_ones_and_dead_letters_the_bad(
    influxdb: InfluxServer, tmp_path: Path, writers: list[DurableWriter]
) -> None:
    db = f"w_{uuid.uuid4().hex[:10]}"
    store = InfluxV1Store(influxdb.url, db=db)
    store.setup()
    states = States()
    writer = DurableWriter(store, tmp_path / "spool", clock=SystemClock(), on_state=states)
    writers.append(writer)
    writer.start()
    refused_before = metric("vh_points_refused_total", measurement="heartbeat")
    assert writer.write_durable([heartbeat("cam-001", 0)])
    bad = heartbeat("cam-001", 1).replace("temp_c=41", 'temp_c="hot"')
    batch = [heartbeat("cam-001", s) for s in range(2, 9)] + [bad, "not line protocol"]
    assert writer.write_durable(batch)

    seqs = [r["seq"] for r in influxdb.rows("SELECT seq FROM heartbeat", db=db)]
    assert seqs == [0, 2, 3, 4, 5, 6, 7, 8]
    letters = writer.dead_letters.read()
    assert [x["line"] for x in letters] == [bad, "not line protocol"]
    assert "conflict" in str(letters[0]["reason"]) and letters[0]["device"] == "cam-001"
    assert "unable to parse" in str(letters[1]["reason"])
    assert metric("vh_points_refused_total", measurement="heartbeat") == refused_before + 1
    assert states.names.count("dead_letter") == 2
    assert writer.spool.is_empty()


def test_busy_store_with_retry_after_is_retried_no_sooner_than_it_asks(
    tmp_path: Path, writers: list[DurableWriter]
) -> None:
    with StubInflux([(503, "1"), (429, "1")]) as stub:
        writer = DurableWriter(InfluxV1Store(stub.url, retention=None), tmp_path / "spool", clock=SystemClock(),
                               backoff_initial=0.01)
        writers.append(writer)
        writer.start()
        t = time.monotonic()
        assert writer.write_durable([heartbeat("spk-1", s) for s in range(10)])
        assert time.monotonic() - t < 0.5  # spooled after one attempt, not held
        wait_for(lambda: len(stub.written) == 10, 10)
        gaps = [b - a for a, b in zip(stub.attempts, stub.attempts[1:], strict=False)]
        assert len(stub.attempts) == 3
        assert all(g >= 0.95 for g in gaps), gaps
        assert stub.written == [heartbeat("spk-1", s) for s in range(10)]
        wait_for(lambda: writer.state == "ok", 5)


def test_unreachable_store_is_retried_with_growing_backoff_not_a_tight_loop(
    tmp_path: Path, writers: list[DurableWriter]
) -> None:
    with StubInflux([(503, None)] * 1000) as stub:
        writer = DurableWriter(InfluxV1Store(stub.url, retention=None), tmp_path / "spool", clock=SystemClock(),
                               backoff_initial=0.1, backoff_max=5)
        writers.append(writer)
        writer.start()
        writer.write_durable([heartbeat("spk-1", 0)])
        time.sleep(2.0)
        # 0.1·2^k with jitter in [½, 1]: at most ~6 attempts in 2 s; a tight loop makes thousands
        assert 3 <= len(stub.attempts) <= 8, len(stub.attempts)


def test_slow_store_does_not_hold_write_durable_past_its_timeout(
    tmp_path: Path, writers: list[DurableWriter]
) -> None:
    with StubInflux([], delay_s=3.0) as stub:
        writer = DurableWriter(InfluxV1Store(stub.url, retention=None, timeout=0.5),
                               tmp_path / "spool", clock=SystemClock(), backoff_initial=5)
        writers.append(writer)
        writer.start()
        t = time.monotonic()
        assert writer.write_durable([heartbeat("cam-1", 0)])
        assert time.monotonic() - t < 1.5
        assert sum(writer.spool.pending_counts().values()) == 1


def test_spool_survives_a_writer_restart_and_is_replayed_by_the_next_one(
    influxdb: InfluxServer, tmp_path: Path, writers: list[DurableWriter]
) -> None:
    spool_dir = tmp_path / "spool"
    down = InfluxV1Store(f"http://127.0.0.1:{free_port()}", timeout=0.5)  # nothing listens
    first = DurableWriter(down, spool_dir, clock=SystemClock(), backoff_initial=60)
    first.start()
    lines = [heartbeat("cam-9", s) for s in range(50)]
    assert first.write_durable(lines[:20])
    first.submit(lines[20:])
    status = first.status()
    first.stop(5)
    assert metric("vh_points_spooled", measurement="heartbeat") == 50
    assert status.state == "spooling" and status.store_ready is False
    assert status.spooled_lines + status.buffered_lines == 50

    db = f"w_{uuid.uuid4().hex[:10]}"
    store = InfluxV1Store(influxdb.url, db=db)
    store.setup()
    states = States()
    second = DurableWriter(store, spool_dir, clock=SystemClock(), on_state=states)
    writers.append(second)
    second.start()
    wait_for(lambda: second.spool.is_empty(), 10)
    rows = influxdb.rows("SELECT seq FROM heartbeat", db=db)
    assert [r["seq"] for r in rows] == list(range(50))
    assert states.names[0] == "spooling"
    wait_for(lambda: states.names[-1] == "ok", 5)
    assert metric("vh_points_spooled", measurement="heartbeat") == 0


def test_full_spool_reports_spool_full_and_holds_writers_until_the_store_returns(
    tmp_path: Path, writers: list[DurableWriter]
) -> None:
    with StubInflux([(503, "1")] * 2) as stub:
        states = States()
        writer = DurableWriter(InfluxV1Store(stub.url, retention=None), tmp_path / "spool", clock=SystemClock(),
                               max_spool_bytes=600, on_state=states)
        writers.append(writer)
        writer.start()
        assert writer.write_durable([heartbeat("cam-1", s) for s in range(3)], timeout=0.5)
        assert not writer.write_durable([heartbeat("cam-1", s) for s in range(3, 9)], timeout=0.3)
        assert "spool_full" in states.names
        wait_for(lambda: len(stub.written) == 9, 10)
        assert stub.written == [heartbeat("cam-1", s) for s in range(9)]


def test_submitted_lines_reach_the_store_within_flush_interval(
    tmp_path: Path, writers: list[DurableWriter]
) -> None:
    store = SqliteStore(tmp_path / "ts.sqlite3", clock=SystemClock())
    store.setup()
    writer = DurableWriter(store, tmp_path / "spool", clock=SystemClock(), flush_s=0.1)
    writers.append(writer)
    writer.start()
    stored_before = metric("vh_points_stored_total", measurement="heartbeat")
    writer.submit([heartbeat("cam-1", s) for s in range(5)])
    t = time.monotonic()
    wait_for(lambda: len(store.read_points("heartbeat")) == 5, 2)
    assert time.monotonic() - t < 1.0
    assert metric("vh_points_stored_total", measurement="heartbeat") == stored_before + 5


def test_stop_flushes_buffered_lines(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "ts.sqlite3", clock=SystemClock())
    writer = DurableWriter(store, tmp_path / "spool", clock=SystemClock(), flush_s=1.0, batch_size=10_000)
    writer.start()
    writer.submit([heartbeat("cam-1", s) for s in range(100)])
    writer.stop(5)
    assert len(store.read_points("heartbeat")) == 100


@pytest.mark.unit
def test_backoff_honours_retry_after_and_grows_without_it() -> None:
    assert next_delay(0, 7.0) == 7.0
    assert next_delay(5, 0.0) == 0.05
    assert [next_delay(k, None, 0.5, 30, rand=lambda: 1.0) for k in range(8)] == [
        0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert next_delay(3, None, 0.5, 30, rand=lambda: 0.0) == 2.0


def test_lines_submitted_before_start_are_written_and_writes_after_stop_are_refused(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "ts.sqlite3", clock=SystemClock())
    writer = DurableWriter(store, tmp_path / "spool", clock=SystemClock())
    writer.submit([heartbeat("cam-1", 0)])
    writer.start()
    assert writer.flush(5)
    writer.stop(5)
    dropped_before = metric("vh_points_dropped_total", measurement="heartbeat")
    assert writer.write_durable([heartbeat("cam-1", 1)]) is False
    writer.submit([heartbeat("cam-1", 2)])
    assert [p.fields["seq"] for p in store.read_points("heartbeat")] == [0]
    assert metric("vh_points_dropped_total", measurement="heartbeat") == dropped_before + 2


class FlakyStore(SqliteStore):
    """A real SQLite store that answers 503 with Retry-After while `down` is set."""

    def __init__(self, path: Path, retry_after: float | None) -> None:
        super().__init__(path, clock=SystemClock())
        self.down = True
        self.retry_after = retry_after
        self.attempts = 0

    def write_lines(self, lines: list[str]) -> None:
        self.attempts += 1
        if self.down:
            raise TransientStoreError("InfluxDB answered 503: busy", self.retry_after)
        super().write_lines(lines)


class WatchedClock(ManualClock):
    """A ManualClock that counts how often the writer's replayer thread has looked at it, so a
    test can wait until the replayer has seen an advanced time instead of sleeping."""

    def __init__(self) -> None:
        super().__init__()
        self.replayer_reads = 0

    def monotonic(self) -> float:
        if threading.current_thread().name == "tsdb-replayer":
            self.replayer_reads += 1
        return super().monotonic()

    def wait_replayer_reads(self, n: int, timeout: float = 5.0) -> None:
        target = self.replayer_reads + n
        wait_for(lambda: self.replayer_reads >= target, timeout)


def test_retry_after_is_measured_on_the_injected_clock(tmp_path: Path, writers: list[DurableWriter]) -> None:
    clock = WatchedClock()
    store = FlakyStore(tmp_path / "ts.sqlite3", retry_after=60)
    writer = DurableWriter(store, tmp_path / "spool", clock=clock)
    writers.append(writer)
    writer.start()
    assert writer.write_durable([heartbeat("cam-1", 0)])
    assert store.attempts == 1
    store.down = False
    clock.advance(59)
    # the replayer has looked at the advanced clock three times and decided each time to wait on
    clock.wait_replayer_reads(3)
    assert store.attempts == 1  # 59 s on the hub's clock: still waiting as asked
    clock.advance(2)
    wait_for(lambda: writer.spool.is_empty(), 5)
    assert store.attempts == 2
    assert [p.fields["seq"] for p in store.read_points("heartbeat")] == [0]
