"""Every benchmark module imports: a refactor that moves a name the benchmarks use breaks
`python -m bench all` otherwise silently (the benchmarks are not run by the test suite)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

BENCH = Path(__file__).resolve().parents[2] / "bench"
MODULES = sorted(p.stem for p in BENCH.glob("*.py") if p.stem not in ("__init__", "__main__"))


def test_the_benchmarks_are_found() -> None:
    assert {"ingest", "broadcast_fanout", "api_latency", "snapshots"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_benchmark_module_imports(name: str) -> None:
    importlib.import_module(f"bench.{name}")
