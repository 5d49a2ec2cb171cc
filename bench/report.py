"""Results → one Markdown report with plots (matplotlib), plus adapters that turn the JSON the
colleagues' benchmark scripts print into the common result shape (figures with baselines).

    python -m bench report            # rebuild bench/results/report.md from bench/results/*.json
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import RESULTS_DIR

Result = dict[str, Any]


def _fig(name: str, value: Any, unit: str, baseline_name: str | None = None, baseline: Any = None,
         target: str | None = None, met: bool | None = None, higher_is_better: bool = True) -> dict[str, Any]:
    ratio = None
    if isinstance(value, int | float) and isinstance(baseline, int | float) and baseline:
        ratio = round(value / baseline, 4)
    return {"name": name, "value": value, "unit": unit, "baseline_name": baseline_name, "baseline": baseline,
            "ratio": ratio, "target": target, "met": met, "higher_is_better": higher_is_better}


def _lineprotocol(raw: dict[str, Any]) -> Result:
    return {"figures": [
        _fig("hub line-protocol encoder", raw.get("hub_encode_point_per_s"), "points/s",
             "influxdb-client Point", raw.get("influxdb_client_point_per_s")),
        _fig("hub encoder, batch", raw.get("hub_encode_points_batch_per_s"), "points/s",
             "f-string, no escaping", raw.get("fstring_no_escaping_per_s")),
    ]}


def _sim_scale(raw: dict[str, Any]) -> Result:
    return {"ok": bool(raw.get("all_connected", True)), "figures": [
        _fig(f"simulator heartbeats/s ({raw.get('devices')} devices, one process)", raw.get("heartbeats_per_s"),
             "msg/s", "expected (devices / interval)", raw.get("heartbeats_expected_per_s")),
        _fig("simulator connect time", raw.get("connect_s"), "s", higher_is_better=False),
        _fig("simulator RSS", raw.get("sim_rss_mb"), "MB", higher_is_better=False),
        _fig("heartbeat seq gaps", raw.get("seq_gaps"), "count", target="0", met=raw.get("seq_gaps") == 0,
             higher_is_better=False),
    ]}


def _broadcast_fanout(raw: dict[str, Any]) -> Result:
    figures, latency = [], {}
    for r in raw.get("results", []):
        n = r.get("speakers")
        hub, base = r.get("hub_api_to_play", {}), r.get("plain_paho_publish", {})
        figures.append(_fig(f"broadcast API → play at {n} speakers, p99", hub.get("p99_ms"), "ms",
                            "plain paho publishes, p99", base.get("p99_ms"), higher_is_better=False))
        figures.append(_fig(f"plays received at {n} speakers", hub.get("received"), "count",
                            "expected", hub.get("expected"), met=hub.get("received") == hub.get("expected")))
        latency[f"broadcast → play, {n} speakers"] = {"p50": hub.get("p50_ms"), "p99": hub.get("p99_ms"),
                                                      "max": hub.get("max_ms")}
        latency[f"plain publish, {n} speakers"] = {"p50": base.get("p50_ms"), "p99": base.get("p99_ms"),
                                                   "max": base.get("max_ms")}
    return {"figures": figures, "latency": latency}


def _generic(raw: dict[str, Any]) -> Result:
    """Unknown shape: numeric top-level values as figures (no baseline)."""
    return {"figures": [_fig(k, v, "") for k, v in raw.items()
                        if isinstance(v, int | float) and not isinstance(v, bool)]}


ADAPTERS: dict[str, Callable[[dict[str, Any]], Result]] = {
    "lineprotocol": _lineprotocol, "sim_scale": _sim_scale, "broadcast_fanout": _broadcast_fanout,
}


def normalize(name: str, raw: dict[str, Any]) -> Result:
    """Any benchmark's printed JSON → the common result shape."""
    if isinstance(raw.get("figures"), list):
        out = dict(raw)
        out.setdefault("name", name)
        return out
    try:
        part = ADAPTERS.get(name, _generic)(raw)
    except Exception as exc:  # a changed output shape must not lose the raw figures
        part = {**_generic(raw), "adapter_error": f"{type(exc).__name__}: {exc}"}
    return {"name": name, "ok": part.get("ok", True), "error": None, "figures": part["figures"],
            "series": part.get("series", {}), "latency": part.get("latency", {}), "details": raw}


# --- the report ------------------------------------------------------------------------------
def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "**no**"
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 10 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def summary_rows(results: list[Result]) -> list[list[str]]:
    rows = []
    for r in results:
        if not r.get("ok", True) and not r.get("figures"):
            rows.append([r["name"], f"FAILED: {r.get('error')}", "", "", "", "", ""])
        for f in r.get("figures", []):
            unit = f" {f['unit']}" if f.get("unit") else ""
            base = f"{_fmt(f.get('baseline'))} ({f['baseline_name']})" if f.get("baseline_name") else "—"
            rows.append([r["name"], f["name"], _fmt(f.get("value")) + unit, base, _fmt(f.get("ratio")),
                         f.get("target") or "", _fmt(f.get("met"))])
    return rows


def table(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


SUMMARY_HEADER = ["benchmark", "figure", "value", "baseline (same run)", "ratio", "target", "met"]


def plot(results: list[Result], directory: Path) -> list[str]:
    """throughput.png, latency.png, memory.png (only those with data). Returns file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []

    def series_plot(fname: str, title: str, ylabel: str, pick: Callable[[str], bool]) -> None:
        fig, ax = plt.subplots(figsize=(9, 4.5))
        drawn = 0
        for r in results:
            for key, pts in r.get("series", {}).items():
                if pick(key) and pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], label=f"{r['name']}: {key}")
                    drawn += 1
        if drawn:
            ax.set(title=title, xlabel="seconds", ylabel=ylabel)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
            fig.tight_layout()
            fig.savefig(directory / fname, dpi=110)
            made.append(fname)
        plt.close(fig)

    series_plot("throughput.png", "Throughput over time", "messages/s", lambda k: "/s" in k)
    series_plot("memory.png", "Hub memory over time (RSS of the process tree)", "MB", lambda k: k.startswith("rss"))

    labels, p50, p99 = [], [], []
    for r in results:
        for key, lat in r.get("latency", {}).items():
            if isinstance(lat, dict) and lat.get("p99") is not None:
                labels.append(f"{r['name']}: {key}")
                p50.append(float(lat.get("p50") or 0))
                p99.append(float(lat["p99"]))
    if labels:
        fig, ax = plt.subplots(figsize=(9, 0.5 * len(labels) + 1.5))
        ys = range(len(labels))
        ax.barh([y + 0.2 for y in ys], p99, height=0.4, label="p99")
        ax.barh([y - 0.2 for y in ys], p50, height=0.4, label="p50")
        ax.set_yticks(list(ys), labels, fontsize=7)
        ax.set(title="Latency percentiles", xlabel="ms")
        ax.set_xscale("log")
        ax.grid(alpha=0.3, axis="x")
        ax.legend()
        fig.tight_layout()
        fig.savefig(directory / "latency.png", dpi=110)
        plt.close(fig)
        made.append("latency.png")
    return made


def load_results(directory: Path = RESULTS_DIR) -> list[Result]:
    out = []
    for p in sorted(directory.glob("*.json")):
        try:
            out.append(json.loads(p.read_text()))
        except ValueError:
            continue
    return out


def write_report(directory: Path = RESULTS_DIR, results: list[Result] | None = None) -> Path:
    results = results if results is not None else load_results(directory)
    plots = plot(results, directory)
    parts = [
        "# VillageHub benchmark report", "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `python -m bench`. "
        "Every figure sits beside a baseline measured in the same run; see docs/benchmarks.md for what each means.",
        "", "## Summary", "", table(summary_rows(results), SUMMARY_HEADER), "",
    ]
    lat_rows = [[r["name"], k, _fmt(v.get("p50")), _fmt(v.get("p90")), _fmt(v.get("p99")), _fmt(v.get("max")),
                 _fmt(v.get("n"))]
                for r in results for k, v in r.get("latency", {}).items() if isinstance(v, dict)]
    if lat_rows:
        parts += ["## Latency (ms)", "", table(lat_rows, ["benchmark", "what", "p50", "p90", "p99", "max", "n"]), ""]
    for p in plots:
        parts += [f"![{p[:-4]}]({p})", ""]
    failed = [r for r in results if not r.get("ok", True)]
    if failed:
        parts += ["## Failures", ""] + [f"- **{r['name']}**: {r.get('error')}" for r in failed] + [""]
    parts += ["## Runs", "", table([[r["name"], "quick" if r.get("quick") else "full",
                                     _fmt(r.get("duration_s")), "ok" if r.get("ok", True) else "FAILED"]
                                    for r in results], ["benchmark", "size", "seconds", "status"]), ""]
    path = directory / "report.md"
    path.write_text("\n".join(parts))
    return path
