"""The garbage-collector policy of the hub's processes (`hub.gcpolicy`), in a fresh interpreter:
it changes process-wide state that the test process must keep."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

PROBE = """
import gc, json, threading, time, weakref
from hub import gcpolicy
before = {"threshold": gc.get_threshold(), "frozen": gcpolicy.frozen_objects()}
kept = [[i] for i in range(1000)]
gcpolicy.settle()
gcpolicy.settle()  # once per process
after = {"threshold": gc.get_threshold(), "frozen": gcpolicy.frozen_objects(),
         "threads": [t.name for t in threading.enumerate()]}

class Cycle:
    pass

cycle = Cycle()
cycle.me = cycle  # what httpx makes per request: freed only by the collector
gone = weakref.ref(cycle)
del cycle
deadline = time.monotonic() + 10
while gone() is not None and time.monotonic() < deadline:  # few allocations meanwhile
    time.sleep(0.05)
print(json.dumps({"before": before, "after": after, "cycle_collected": gone() is None}))
"""


def test_settle_freezes_what_exists_and_collects_young_objects_on_time_not_on_count() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                         timeout=60)
    got = json.loads(out.stdout)
    assert got["before"]["frozen"] == 0 and got["before"]["threshold"][0] == 700
    assert got["after"]["frozen"] >= 1000  # the process's objects so far, `kept` among them
    assert got["after"]["threshold"][:2] == [50_000, 20]
    assert got["after"]["threads"].count("gc-young") == 1
    # a cycle made afterwards is collected on time, though far fewer than 50,000 objects were made
    assert got["cycle_collected"]
