"""Python thread names made visible to the operating system.

Linux shows every thread of the hub as ``python3`` (its ``comm``), so ``top -H``, py-spy's
native view and the ingest benchmark cannot tell the MQTT receiver from the InfluxDB writer.
After :func:`install`, each thread started through :mod:`threading` — the hub's own, paho's
network loop, executor threads — writes its Python name (at most 15 bytes, the kernel's limit)
to ``/proc/self/task/<tid>/comm`` as its first act, so per-thread CPU can be read from
``/proc/<pid>/task/*/stat`` by name.

How: :func:`threading.setprofile` installs a profile function in every thread *started after
it*; ours names the thread at its first event and removes itself, so a thread pays once, at
start, and nothing per call afterwards. Threads that already run keep their names; where
``/proc`` is not writable (not Linux) naming is silently skipped.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from types import FrameType
from typing import Any

COMM_BYTES = 15  # TASK_COMM_LEN - 1


def comm_name(name: str) -> str:
    """The thread name the kernel can hold: 15 bytes of UTF-8, never a cut character."""
    raw = name.encode("utf-8")[:COMM_BYTES]
    return raw.decode("utf-8", errors="ignore")


def name_current_thread(name: str | None = None) -> bool:
    """Give the calling thread's OS thread ``name`` (default: its Python name). True when set."""
    label = comm_name(name if name is not None else threading.current_thread().name)
    with contextlib.suppress(OSError):
        with open(f"/proc/self/task/{threading.get_native_id()}/comm", "w", encoding="utf-8") as comm:
            comm.write(label)
        return True
    return False


def _name_then_step_aside(frame: FrameType, event: str, arg: Any) -> None:
    sys.setprofile(None)
    name_current_thread()


def install() -> None:
    """From now on every new thread carries its Python name in the OS (see the module doc)."""
    threading.setprofile(_name_then_step_aside)
