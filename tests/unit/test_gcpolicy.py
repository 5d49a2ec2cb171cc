"""The garbage-collector policy of the hub's processes (`hub.gcpolicy`), in a fresh interpreter:
it changes process-wide state that the test process must keep."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

PROBE = """
import gc, json
from hub import gcpolicy
before = {"threshold": gc.get_threshold(), "frozen": gcpolicy.frozen_objects()}
kept = [[i] for i in range(1000)]
gcpolicy.settle()
after = {"threshold": gc.get_threshold(), "frozen": gcpolicy.frozen_objects()}
cycle = []
cycle.append(cycle)
del cycle
found = gc.collect()
print(json.dumps({"before": before, "after": after, "cycle_collected": found >= 1}))
"""


def test_settle_freezes_what_exists_and_collects_young_objects_less_often() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                         timeout=60)
    got = json.loads(out.stdout)
    assert got["before"]["frozen"] == 0 and got["before"]["threshold"][0] == 700
    assert got["after"]["frozen"] >= 1000  # the process's objects so far, `kept` among them
    assert got["after"]["threshold"][:2] == [50_000, 20]
    assert got["cycle_collected"]  # cycles made afterwards are still collected
