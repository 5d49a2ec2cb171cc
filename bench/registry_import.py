"""Registry figures: `python -m bench.registry_import [--devices 100000]`.

Times, for a synthetic township, parsing it as CSV and YAML, importing it into an empty
registry, re-importing it unchanged, opening the registry, and the hot-path look-ups.
Prints wall and CPU seconds (CPU is the fair figure on a busy machine).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from hub.registry.sample import synthetic_township
from hub.registry.store import Registry
from hub.registry.township_file import parse_township, to_csv, to_yaml

T = TypeVar("T")


def _timed(label: str, fn: Callable[[], T]) -> T:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    print(f"{label:<44} {time.perf_counter() - wall:7.2f} s wall {time.process_time() - cpu:7.2f} s cpu")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=100_000)
    args = parser.parse_args(argv)
    town = synthetic_township(args.devices)
    print(f"{args.devices} devices, {len(town.villages)} villages, {len(town.groups)} groups")
    csv_text = to_csv(town)
    yaml_text = _timed("write YAML", lambda: to_yaml(town))
    print(f"CSV {len(csv_text.encode()) / 1e6:.1f} MB, YAML {len(yaml_text.encode()) / 1e6:.1f} MB")
    _timed("parse CSV", lambda: parse_township(csv_text, fmt="csv"))
    parsed = _timed("parse YAML", lambda: parse_township(yaml_text, fmt="yaml"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "registry.db"
        reg = Registry(path)
        _timed("import into an empty registry", lambda: reg.import_township(parsed))
        _timed("re-import unchanged", lambda: reg.import_township(parsed))
        reg.close()
        reg = _timed("open the registry (load the snapshot)", lambda: Registry(path))
        known = parsed.devices[len(parsed.devices) // 2].id
        n = 200_000
        per_get = timeit.timeit(lambda: reg.get(known), number=n) / n
        per_note = timeit.timeit(lambda: reg.note_unregistered(known, "camera"), number=n) / n
        print(f"get(id) {per_get * 1e6:.2f} µs, note_unregistered(known) {per_note * 1e6:.2f} µs")
        new = 2000
        wall = time.perf_counter()
        for i in range(new):
            reg.note_unregistered(f"stray-{i}", "camera")
        print(f"note_unregistered(new) {(time.perf_counter() - wall) / new * 1e6:.0f} µs each "
              f"with {len(reg.devices())} devices")
        reg.close()


if __name__ == "__main__":
    main()
