"""Thread names reach the OS, so per-thread CPU can be attributed (`top -H`, the ingest bench)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub import threadnames


@pytest.fixture
def installed() -> Iterator[None]:
    before = threading.getprofile()
    threadnames.install()
    try:
        yield
    finally:
        threading.setprofile(before)


@pytest.fixture
def not_installed() -> Iterator[None]:
    """No hook, whatever an earlier test in this process started (`serve_async` installs it)."""
    before = threading.getprofile()
    threading.setprofile(None)  # type: ignore[arg-type]
    try:
        yield
    finally:
        threading.setprofile(before)


def run_in_thread(name: str) -> tuple[str, object]:
    """(the thread's comm as the kernel reports it, its profile function once it has run)."""
    seen: dict[str, object] = {}

    def body() -> None:
        seen["comm"] = Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().strip()
        seen["profile"] = sys.getprofile()

    t = threading.Thread(target=body, name=name)
    t.start()
    t.join(5)
    return str(seen["comm"]), seen["profile"]


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="thread names live in /proc (Linux)")
def test_a_thread_started_after_install_carries_its_name_and_no_profiler(installed: None) -> None:
    comm, profile = run_in_thread("mqtt-rx")
    assert comm == "mqtt-rx"
    assert profile is None  # named once at start, nothing per call afterwards


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="thread names live in /proc (Linux)")
def test_without_install_the_kernel_keeps_the_process_name(not_installed: None) -> None:
    comm, _ = run_in_thread("mqtt-rx")
    assert comm != "mqtt-rx"


def test_names_are_cut_to_the_kernels_15_bytes_never_inside_a_character() -> None:
    assert threadnames.comm_name("ingest-fan-in-12345") == "ingest-fan-in-1"
    assert threadnames.comm_name("广播线程-commands") == "广播线程-co"  # 4 × 3 bytes + "-co" = 15
    assert threadnames.comm_name("广播线程广播线程") == "广播线程广"  # 15 bytes: five whole characters
    assert threadnames.comm_name("") == ""
