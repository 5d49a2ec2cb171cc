"""Line-protocol serializer speed: hub.tsdb.lineprotocol vs influxdb-client's Point, one run.

    .venv/bin/python bench/lineprotocol.py [--points 200000]

Prints one JSON object: points/s of each, with a plain f-string (no escaping at all) as the
ceiling. The points are realistic heartbeats (4 tags, 8 fields of mixed types).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.messages import Point
from hub.tsdb.lineprotocol import encode_point, encode_points


def make_points(n: int, devices: int = 10_000) -> list[Point]:
    t0 = 1_764_400_000.0
    return [
        Point(
            "heartbeat",
            {"device": f"cam-{i % devices:05d}", "kind": "camera", "village": "v03",
             "village_group": "g12"},
            {"seq": i, "fps": 25.0, "bitrate_kbps": 2048.5, "temp_c": 41.25, "uptime_s": 86_400 + i,
             "rssi_dbm": -67, "recording": True, "fw": "2.4.1"},
            t0 + i * 0.001,
        )
        for i in range(n)
    ]


def _fstring(p: Point) -> str:
    tags = ",".join(f"{k}={v}" for k, v in p.tags.items())
    fields = ",".join(f"{k}={v}" for k, v in p.fields.items())
    return f"{p.measurement},{tags} {fields} {int(p.time * 1e9)}"


def _oracle(p: Point) -> str:
    from influxdb_client import Point as ClientPoint

    o = ClientPoint(p.measurement)
    for k, v in p.tags.items():
        o.tag(k, v)
    for k, v in p.fields.items():
        o.field(k, v)
    o.time(round(p.time * 1e6) * 1000)
    return str(o.to_line_protocol())


def _rate(fn: Any, points: list[Point]) -> float:
    t = time.perf_counter()
    for p in points:
        fn(p)
    return len(points) / (time.perf_counter() - t)


def run(n: int = 200_000) -> dict[str, Any]:
    points = make_points(n)
    oracle_points = points[: max(1, n // 5)]  # the oracle is ~10x slower; a fifth is plenty
    assert [_oracle(p) for p in points[:100]] == encode_points(points[:100])
    ours = _rate(encode_point, points)
    t = time.perf_counter()
    encode_points(points)
    batch = n / (time.perf_counter() - t)
    oracle = _rate(_oracle, oracle_points)
    return {
        "bench": "lineprotocol",
        "points": n,
        "hub_encode_point_per_s": round(ours),
        "hub_encode_points_batch_per_s": round(batch),
        "influxdb_client_point_per_s": round(oracle),
        "fstring_no_escaping_per_s": round(_rate(_fstring, points)),
        "speedup_vs_influxdb_client": round(ours / oracle, 2),
        "python": sys.version.split()[0],
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--points", type=int, default=200_000)
    args = ap.parse_args(argv)
    print(json.dumps(run(args.points)))


if __name__ == "__main__":
    main()
