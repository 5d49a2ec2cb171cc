"""`python -m bench all|<name>…|report [--quick]`: every benchmark of the project, one report.

Each benchmark runs as `python -m bench.<module>` in its own subprocess with a time bound;
the JSON object it prints becomes bench/results/<name>.json (normalised to figures with
same-run baselines), and bench/results/report.md (+ PNG plots) is rebuilt from all results.
`--quick` runs CI-sized versions. The soak is never part of `all`: run `python -m bench soak`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import RESULTS_DIR, ROOT
from bench.report import SUMMARY_HEADER, normalize, summary_rows, table, write_report


@dataclass(frozen=True)
class Bench:
    name: str
    module: str
    full_args: tuple[str, ...] = ()
    quick_args: tuple[str, ...] = ("--quick",)
    full_timeout_s: float = 900.0
    quick_timeout_s: float = 240.0
    in_all: bool = True


BENCHES: list[Bench] = [
    Bench("lineprotocol", "bench.lineprotocol", (), ("--points", "50000")),
    Bench("ingest", "bench.ingest"),
    Bench("api_latency", "bench.api_latency"),
    Bench("snapshots", "bench.snapshots"),
    Bench("broadcast_fanout", "bench.broadcast_fanout", (), ("--speakers", "1000", "--rounds", "2")),
    Bench("sim_scale", "bench.sim_scale", (), ("--devices", "1000", "--hold", "10")),
    Bench("soak", "bench.soak", (), ("--minutes", "2"), full_timeout_s=4 * 3600, quick_timeout_s=600,
          in_all=False),
]


def last_json_object(text: str) -> dict[str, Any] | None:
    """The last top-level JSON object in `text` (scripts may log before it)."""
    dec = json.JSONDecoder()
    starts = [i for i, ch in enumerate(text) if ch == "{" and (i == 0 or text[i - 1] == "\n")]
    for i in reversed(starts):
        try:
            obj, _ = dec.raw_decode(text, i)
        except ValueError:
            continue
        if isinstance(obj, dict):
            return obj
    return None


def _module_exists(module: str) -> bool:
    return (ROOT / (module.replace(".", "/") + ".py")).exists()


def _supports_quick(module: str) -> bool:
    return "--quick" in (ROOT / (module.replace(".", "/") + ".py")).read_text()


def run_one(b: Bench, quick: bool, results_dir: Path) -> dict[str, Any]:
    t0 = time.monotonic()
    if not _module_exists(b.module):
        res: dict[str, Any] = {"name": b.name, "ok": False, "error": f"{b.module} does not exist yet", "figures": []}
    else:
        args = list(b.quick_args if quick else b.full_args)
        if quick and args == ["--quick"] and not _supports_quick(b.module):
            args = []
        timeout = b.quick_timeout_s if quick else b.full_timeout_s
        log = results_dir / f"{b.name}.log"
        print(f"== {b.name}: python -m {b.module} {' '.join(args)} (bound {timeout:.0f} s)", flush=True)
        try:
            with open(log, "wb") as err:
                proc = subprocess.run([sys.executable, "-m", b.module, *args], cwd=ROOT, stdout=subprocess.PIPE,
                                      stderr=err, timeout=timeout, check=False)
            raw = last_json_object(proc.stdout.decode(errors="replace"))
            if raw is None:
                res = {"name": b.name, "ok": False, "figures": [],
                       "error": f"exit {proc.returncode}, no JSON printed (see {log.name})"}
            else:
                res = normalize(b.name, raw)
                if proc.returncode != 0 and res.get("ok", True):
                    res["ok"], res["error"] = False, f"exit code {proc.returncode} (see {log.name})"
        except subprocess.TimeoutExpired:
            res = {"name": b.name, "ok": False, "figures": [], "error": f"killed after its {timeout:.0f} s bound"}
    res["quick"] = quick
    res.setdefault("duration_s", round(time.monotonic() - t0, 1))
    (results_dir / f"{b.name}.json").write_text(json.dumps(res, ensure_ascii=False, indent=1))
    return res


def main(argv: list[str] | None = None) -> int:
    names = [b.name for b in BENCHES]
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", nargs="+", help=f"all | report | {' | '.join(names)}")
    ap.add_argument("--quick", action="store_true", help="short CI-sized runs")
    ap.add_argument("--results", type=Path, default=RESULTS_DIR)
    a = ap.parse_args(argv)
    a.results.mkdir(parents=True, exist_ok=True)
    if a.what == ["report"]:
        print(write_report(a.results))
        return 0
    chosen = [b for b in BENCHES if b.in_all] if "all" in a.what else []
    unknown = [w for w in a.what if w != "all" and w not in names]
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(unknown)}; choose from all, report, {', '.join(names)}")
    chosen += [b for b in BENCHES if b.name in a.what and b not in chosen]
    results = [run_one(b, a.quick, a.results) for b in chosen]
    report = write_report(a.results)
    print()
    print(table(summary_rows(results), SUMMARY_HEADER))
    print(f"\nreport: {report}")
    return 0 if all(r.get("ok", True) for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
