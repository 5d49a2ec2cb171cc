"""The on-disk spool: order, durability across reopen, torn records, bound, segments."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.tsdb.spool import Spool, SpoolFullError, decode_records, encode_record

pytestmark = pytest.mark.unit


def lines(prefix: str, n: int, start: int = 0) -> list[str]:
    return [f"{prefix},device=d seq={i}i {i}" for i in range(start, start + n)]


def drain(spool: Spool, max_lines: int = 1000) -> list[str]:
    out: list[str] = []
    while (batch := spool.read_batch(max_lines)) is not None:
        out.extend(batch.lines)
        spool.commit(batch)
    return out


def test_lines_come_back_in_the_order_they_were_appended(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for k in range(5):
        spool.append(lines("heartbeat", 10, k * 10))
    assert drain(spool, max_lines=7) == lines("heartbeat", 50)
    assert spool.is_empty()
    assert spool.pending_bytes == 0


def test_read_batch_without_commit_reads_the_same_lines_again(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(lines("m", 3))
    first = spool.read_batch(100)
    assert first is not None
    again = spool.read_batch(100)
    assert again is not None and again.lines == first.lines


def test_pending_lines_survive_a_reopen(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(lines("heartbeat", 4))
    spool.append(lines("event", 2))
    batch = spool.read_batch(4)
    assert batch is not None
    spool.commit(batch)
    spool.close()
    reopened = Spool(tmp_path)
    assert reopened.pending_counts() == {"event": 2}
    assert drain(reopened) == lines("event", 2)


def test_spool_that_was_never_closed_is_read_back(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(lines("m", 3))  # no close(): as after a SIGKILL
    assert drain(Spool(tmp_path)) == lines("m", 3)


@pytest.mark.parametrize("cut", [1, 5, 9, 20])
def test_torn_last_record_is_detected_and_skipped(tmp_path: Path, cut: int) -> None:
    spool = Spool(tmp_path)
    spool.append(lines("m", 3))
    spool.append(lines("m", 3, 3))
    spool.close()
    [segment] = sorted(tmp_path.glob("seg-*.log"))
    data = segment.read_bytes()
    segment.write_bytes(data[:-cut])
    reopened = Spool(tmp_path)
    assert reopened.torn_records == 1
    reopened.append(lines("m", 1, 99))  # appends continue after the cut
    assert drain(reopened) == lines("m", 3) + lines("m", 1, 99)


def test_corrupt_last_record_is_detected_by_its_crc(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(lines("m", 2))
    spool.append(lines("m", 2, 2))
    spool.close()
    [segment] = sorted(tmp_path.glob("seg-*.log"))
    data = bytearray(segment.read_bytes())
    data[-3] ^= 0xFF
    segment.write_bytes(bytes(data))
    reopened = Spool(tmp_path)
    assert reopened.torn_records == 1
    assert drain(reopened) == lines("m", 2)


def test_append_past_the_bound_raises_spool_full_and_space_returns_after_replay(
    tmp_path: Path,
) -> None:
    three = sum(len(encode_record(lines("m", 10, 100 + k * 10))) for k in range(3))
    spool = Spool(tmp_path, max_bytes=three)
    for k in range(3):
        spool.append(lines("m", 10, 100 + k * 10))
    with pytest.raises(SpoolFullError):
        spool.append(lines("m", 10, 130))
    batch = spool.read_batch(10)
    assert batch is not None
    spool.commit(batch)
    spool.append(lines("m", 10, 130))
    assert drain(spool) == lines("m", 30, 110)


def test_segments_roll_over_and_spent_ones_are_deleted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=1024)
    for k in range(40):
        spool.append(lines("m", 5, k * 5))
    assert len(list(tmp_path.glob("seg-*.log"))) > 3
    assert drain(spool, max_lines=13) == lines("m", 200)
    assert len(list(tmp_path.glob("seg-*.log"))) == 1


def test_lines_with_newlines_and_chinese_text_are_kept_exactly(tmp_path: Path) -> None:
    odd = ['event,type=门 detail="第一行\n第二行" 1', 'event detail="tab\there \\"q\\"" 2']
    spool = Spool(tmp_path)
    spool.append(odd)
    assert drain(Spool(tmp_path)) == odd


def test_pending_counts_are_per_measurement(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(lines("heartbeat", 3) + lines("presence", 1))
    assert spool.pending_counts() == {"heartbeat": 3, "presence": 1}


def test_decode_records_stops_at_garbage() -> None:
    data = encode_record(["a x=1 1"]) + b"\x00garbage"
    records, end = decode_records(data)
    assert [r for _, r in records] == [["a x=1 1"]]
    assert end == len(encode_record(["a x=1 1"]))


def test_disk_full_mid_write_reports_full_and_leaves_no_partial_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    spool = Spool(tmp_path)
    spool.append(lines("m", 2))
    real_write = os.write

    def half_then_enospc(fd: int, data: bytes | memoryview) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_enospc)
    with pytest.raises(SpoolFullError):
        spool.append(lines("m", 2, 2))
    monkeypatch.setattr(os, "write", real_write)
    spool.append(lines("m", 2, 4))  # space is back
    assert Spool(tmp_path).torn_records == 0
    assert drain(spool) == lines("m", 2) + lines("m", 2, 4)


def test_spool_written_by_a_sigkilled_process_keeps_every_acknowledged_record(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    child = (
        "import sys\n"
        "from hub.tsdb.spool import Spool\n"
        f"spool = Spool({str(tmp_path)!r}, segment_bytes=64 * 1024)\n"
        "for i in range(1_000_000):\n"
        "    spool.append([f'heartbeat,device=d{j} seq={i}i {i}' for j in range(20)])\n"
        "    print(i, flush=True)\n"
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", child], cwd=root, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    acked = -1
    for line in proc.stdout:
        acked = int(line)
        if acked >= 300:
            break
    proc.send_signal(signal.SIGKILL)  # the PID we started, mid-append
    proc.wait(10)
    proc.stdout.close()

    spool = Spool(tmp_path)
    seqs = [int(x.split("seq=")[1].split("i")[0]) for x in drain(spool, max_lines=997)]
    records = seqs[::20]
    assert records == list(range(len(records)))  # in order, no gap, no garbage
    assert len(records) >= acked + 1  # every append that returned is there
    assert len(seqs) == 20 * len(records)
