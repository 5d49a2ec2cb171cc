"""VillageHub benchmarks: `python -m bench all` (see docs/benchmarks.md)."""
