"""How the hub's long-running processes use Python's cyclic garbage collector.

The default thresholds (700, 10, 10) were made for short scripts. In a hub holding 10,000
devices' state, a heartbeat's objects (its fields dict, the live entry it replaces) live about
as long as the device's heartbeat interval: they survive the young and middle collections, are
promoted, and every few seconds the collector walks the whole heap. At 12,000 heartbeats/s:
about 1,450 young, 130 middle and 10 full collections per 200,000 heartbeats, the full ones
140–380 ms each (holding the GIL: pauses in the ingest path), 2–3.6 s of CPU in all, 10–18 µs
per heartbeat. Nearly all of it is refcounting's garbage anyway: the hub makes few cycles.

`settle()`, called once a process is wired and about to serve:
  * collects once, then freezes what exists (modules, settings, the registry as loaded): the
    collector never walks those again (`gc.freeze`);
  * counts young objects to 50,000 instead of 700 (the middle generation to 20): objects that
    live for a heartbeat interval die before they are promoted, and no full collection runs
    under a steady load;
  * collects the young generation every second (YOUNG_EVERY_S) all the same, from a thread
    of its own (`gc-young`).
    The threshold counts allocations *minus* deallocations, which a steady load keeps near
    zero, so without it young collections all but stop and the few cycles the hub does make
    wait: httpx makes one per request, which holds the request's body, so every InfluxDB
    write kept its batch (up to ~1 MB) alive, and the process grew by ~1 MB/s (60 MB more at
    the end of a 300,000-heartbeat run).

Measured: see docs/benchmarks.md, "Ingest, fifth step: the garbage collector".
"""

from __future__ import annotations

import gc
import threading
import time

YOUNG_THRESHOLD = 50_000
MIDDLE_THRESHOLD = 20
YOUNG_EVERY_S = 1.0

_settled = threading.Event()
_frozen = 0


def settle() -> None:
    """Freeze what exists now and collect young objects on time rather than on count (see the
    module doc). Once per process; later calls change nothing."""
    if _settled.is_set():
        return
    global _frozen
    _settled.set()
    gc.collect()
    gc.freeze()
    _frozen = gc.get_freeze_count()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, gc.get_threshold()[2])
    threading.Thread(target=_collect_young, name="gc-young", daemon=True).start()


def _collect_young() -> None:
    while True:  # a daemon thread: it ends with the process
        time.sleep(YOUNG_EVERY_S)
        gc.collect(0)


def frozen_objects() -> int:
    """Objects `settle()` took out of the collector's walks (0 before it), as counted then
    (`gc.get_freeze_count()` walks them all: 7 % of the hub's CPU when /metrics asked it)."""
    return _frozen
