"""Durable on-disk spool of line-protocol lines: append-only segments, replayed in order.

Layout of the spool directory:
- `seg-000000000001.log`, … : segments; each record is `<u32 length><u32 crc32><payload>`
  (little endian), the payload a JSON array of lines (a quoted string field may hold a
  newline, so records are framed by length, never by newline). A segment rolls over at
  `segment_bytes`.
- `cursor.json`: `{"segment": n, "offset": bytes}`, the first record not yet accepted by
  the store; written atomically (temp file, fsync, rename).

Every `append()` is one record, flushed and fsynced before it returns: a line handed to the
spool survives a crash of the process or of the machine. Records are read back in order
(`read_batch`) and only forgotten once the store accepted them (`commit`), so a crash
between the two replays the batch again: the stores treat a point written twice as one
(same series and time), so replay is exactly-once in the data.

On open, a torn or corrupt record (a crash in the middle of a write) is detected by its
length and CRC: the segment is cut there and the loss, if any, logged and counted. The
spool is bounded: an append that would pass `max_bytes` raises SpoolFullError.
"""

from __future__ import annotations

import json
import logging
import os
import re
import struct
import threading
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from hub.tsdb.lineparse import line_measurement

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<II")
_SEGMENT = re.compile(r"^seg-(\d{12})\.log$")
MAX_RECORD = 256 * 1024 * 1024


class SpoolFullError(Exception):
    """The spool holds `max_bytes` already (or the disk is full)."""


@dataclass(frozen=True, slots=True)
class SpoolBatch:
    """Lines read from the spool, and where the spool continues after them."""

    lines: list[str]
    end: tuple[int, int]  # (segment, offset) just after the last record read
    counts: Counter[str] = field(default_factory=Counter)  # lines per measurement


def encode_record(lines: list[str]) -> bytes:
    payload = json.dumps(lines, ensure_ascii=False, separators=(",", ":")).encode()
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def decode_records(
    data: bytes, offset: int = 0, max_lines: int | None = None
) -> tuple[list[tuple[int, list[str]]], int]:
    """Whole, valid records from `offset` → ([(end offset, lines)], offset where it stopped).

    Stops at the first torn or corrupt record (so the offset returned is len(data) when all
    is clean), or once `max_lines` lines are read.
    """
    out: list[tuple[int, list[str]]] = []
    n = len(data)
    seen = 0
    while offset + _HEADER.size <= n and (max_lines is None or seen < max_lines):
        length, crc = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        end = start + length
        if length > MAX_RECORD or end > n:
            break
        payload = data[start:end]
        if zlib.crc32(payload) != crc:
            break
        try:
            lines = json.loads(payload)
        except ValueError:
            break
        if not isinstance(lines, list):
            break
        out.append((end, [str(x) for x in lines]))
        seen += len(lines)
        offset = end
    return out, offset


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    def __init__(
        self, directory: Path | str, max_bytes: int = 1 << 30, segment_bytes: int = 16 << 20
    ) -> None:
        self.dir = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.torn_records = 0  # records cut off at open (crash during a write)
        self._counts: Counter[str] = Counter()  # pending lines per measurement
        self._bytes = 0  # pending bytes (from the cursor to the end)
        self._cursor = self._read_cursor()
        self._open()

    # -- state --------------------------------------------------------------------------

    @property
    def pending_bytes(self) -> int:
        with self._lock:
            return self._bytes

    def pending_counts(self) -> Counter[str]:
        """Lines waiting in the spool, per measurement."""
        with self._lock:
            return +self._counts

    def is_empty(self) -> bool:
        with self._lock:
            return self._bytes == 0

    # -- writing ------------------------------------------------------------------------

    def append(self, lines: list[str]) -> None:
        """Append one record and fsync it. Raises SpoolFullError (bound or disk full)."""
        if not lines:
            return
        record = encode_record(lines)
        with self._lock:
            if self._bytes + len(record) > self.max_bytes:
                raise SpoolFullError(
                    f"spool full: {self._bytes} of {self.max_bytes} bytes, {len(lines)} lines refused"
                )
            if self._tail_size + len(record) > self.segment_bytes and self._tail_size > 0:
                self._roll()
            try:
                view = memoryview(record)
                while view:  # raw fd: nothing left in a buffer to resurface after an error
                    view = view[os.write(self._tail, view):]
                os.fsync(self._tail)
            except OSError as err:  # ENOSPC, EIO: cut the partial record, report full
                self._truncate_tail(self._tail_size)
                raise SpoolFullError(f"spool write failed: {err}") from err
            self._tail_size += len(record)
            self._bytes += len(record)
            self._counts.update(map(line_measurement, lines))

    # -- reading ------------------------------------------------------------------------

    def read_batch(self, max_lines: int) -> SpoolBatch | None:
        """The oldest records (at least one, about `max_lines` lines), or None when empty."""
        with self._lock:
            seg, off = self._cursor
            lines: list[str] = []
            while seg <= self._tail_seg:
                path = self._path(seg)
                records = self._read_records(path, off, max_lines - len(lines))
                for _, rec in records:
                    lines.extend(rec)
                if records:
                    off += records[-1][0]
                if len(lines) >= max_lines or seg == self._tail_seg:
                    break
                seg, off = seg + 1, 0
            if not lines:
                return None
            return SpoolBatch(lines, (seg, off), Counter(map(line_measurement, lines)))

    def commit(self, batch: SpoolBatch) -> None:
        """The store accepted `batch`: move the cursor past it, delete spent segments."""
        with self._lock:
            self._cursor = batch.end
            self._write_cursor()
            self._counts.subtract(batch.counts)
            self._counts = +self._counts
            for seg in self._segments():
                if seg < batch.end[0]:
                    self._path(seg).unlink(missing_ok=True)
            self._bytes = self._measure_pending()

    def close(self) -> None:
        with self._lock:
            os.close(self._tail)

    # -- internals ----------------------------------------------------------------------

    def _path(self, seg: int) -> Path:
        return self.dir / f"seg-{seg:012d}.log"

    def _segments(self) -> list[int]:
        return sorted(int(m.group(1)) for p in self.dir.iterdir() if (m := _SEGMENT.match(p.name)))

    def _read_cursor(self) -> tuple[int, int]:
        try:
            data = json.loads((self.dir / "cursor.json").read_text())
            return int(data["segment"]), int(data["offset"])
        except (OSError, ValueError, KeyError, TypeError):
            return (0, 0)

    def _write_cursor(self) -> None:
        tmp = self.dir / "cursor.json.tmp"
        with open(tmp, "w") as f:
            json.dump({"segment": self._cursor[0], "offset": self._cursor[1]}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.dir / "cursor.json")
        _fsync_dir(self.dir)

    def _open(self) -> None:
        """Validate every segment from the cursor on: cut torn records, count what is pending."""
        segments = [s for s in self._segments() if s >= self._cursor[0]]
        for seg in self._segments():
            if seg < self._cursor[0]:
                self._path(seg).unlink(missing_ok=True)
        for seg in segments:
            data = self._path(seg).read_bytes()
            start = self._cursor[1] if seg == self._cursor[0] else 0
            records, good_end = decode_records(data, start)
            if good_end < len(data):
                self.torn_records += 1
                log.warning(
                    "spool %s: cut %d bytes of a torn or corrupt record at offset %d "
                    "(a crash during a write); lines before it are kept",
                    self._path(seg).name, len(data) - good_end, good_end,
                )
                with open(self._path(seg), "r+b") as f:
                    f.truncate(good_end)
                    os.fsync(f.fileno())
            for _, lines in records:
                self._counts.update(map(line_measurement, lines))
        self._tail_seg = segments[-1] if segments else max(self._cursor[0], 1)
        if self._cursor[0] == 0:  # a new spool (or its cursor lost): start at the oldest
            self._cursor = (segments[0] if segments else self._tail_seg, 0)
        self._tail = self._open_segment(self._tail_seg)
        self._tail_size = os.fstat(self._tail).st_size
        if self._cursor[0] == self._tail_seg and self._cursor[1] > self._tail_size:
            self._cursor = (self._tail_seg, self._tail_size)  # never past the data
        _fsync_dir(self.dir)
        self._bytes = self._measure_pending()

    def _roll(self) -> None:
        os.close(self._tail)
        self._tail_seg += 1
        self._tail = self._open_segment(self._tail_seg)
        self._tail_size = 0
        _fsync_dir(self.dir)

    @staticmethod
    def _read_records(path: Path, offset: int, max_lines: int) -> list[tuple[int, list[str]]]:
        """Records from `offset` (ends relative to it), reading only as much as needed."""
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return []
        with f:
            f.seek(offset)
            data = b""
            chunk = 1 << 20
            while True:
                more = f.read(chunk)
                data += more
                records, _ = decode_records(data, max_lines=max_lines)
                if len(more) < chunk or sum(len(r) for _, r in records) >= max_lines:
                    return records
                chunk *= 2

    def _open_segment(self, seg: int) -> int:
        return os.open(self._path(seg), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def _truncate_tail(self, size: int) -> None:
        try:
            os.ftruncate(self._tail, size)
        except OSError:
            log.exception("spool: cannot cut a failed write from %s", self._path(self._tail_seg))

    def _measure_pending(self) -> int:
        total = 0
        for seg in self._segments():
            if seg < self._cursor[0]:
                continue
            size = self._tail_size if seg == self._tail_seg else self._path(seg).stat().st_size
            total += size - (self._cursor[1] if seg == self._cursor[0] else 0)
        return max(0, total)
