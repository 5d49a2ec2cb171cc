"""The ranking's components per village, read from what the hub stored (read-only):

- availability: the `presence` series of the time-series store (InfluxDB or the embedded
  SQLite store: the same `read_points` interface);
- alarm_ack: the alerts of the AlertBook (raised_at, acked_at);
- problems_on_time: the problem ledger;
- broadcast_delivery: the broadcast store's deliveries.

Every function takes the period's [start, end) and `now` (what has not happened yet is not
judged), so a past period gives the same answer every time its data is the same.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Final

from hub.rankings.scoring import Component, online_seconds
from hub.tsdb.base import TimeSeriesStore

PRESENCE_LOOKBACK_S: Final = 366 * 86400.0  # how far back the state at the period's start is looked for
PRESENCE_LIMIT: Final = 1_000_000
ALERT_LIMIT: Final = 1_000_000
EXCLUDED_ALERT_TYPES: Final = ("problem_", "store")  # the ledger's own and the hub's, not a village's
UNJUDGED_DELIVERY_STATES: Final = frozenset({"preempted"})
TERMINAL_DELIVERY_STATES: Final = frozenset({"done", "failed", "rejected", "preempted", "expired"})


def _pct(x: float) -> str:
    return f"{100.0 * x:.1f}%"


def availability(store: TimeSeriesStore, villages: Iterable[str], start: float, end: float,
                 now: float) -> dict[str, Component]:
    """Online time / known time over the village's devices (those whose presence points carry
    the village tag), from the last presence change before `start` up to min(end, now)."""
    stop = min(end, now)
    out = {v: Component(0, 0) for v in villages}
    if stop <= start:
        return out
    points = store.read_points("presence", None, start - PRESENCE_LOOKBACK_S, stop, limit=PRESENCE_LIMIT)
    by_device: dict[tuple[str, str], list[tuple[float, bool]]] = defaultdict(list)
    for p in points:
        village, device = p.tags.get("village", ""), p.tags.get("device", "")
        if village in out and device:
            by_device[(village, device)].append((p.time, bool(p.fields.get("online"))))
    online: dict[str, float] = defaultdict(float)
    known: dict[str, float] = defaultdict(float)
    devices: dict[str, int] = defaultdict(int)
    for (village, _device), transitions in by_device.items():
        transitions.sort(key=lambda t: t[0])
        on, kn = online_seconds(transitions, start, stop)
        if kn > 0:
            online[village] += on
            known[village] += kn
            devices[village] += 1
    for v in out:
        if known[v] > 0:
            out[v] = Component(online[v], known[v],
                               f"在线率 {_pct(online[v] / known[v])}（{devices[v]} 台设备）")
    return out


def alarm_ack(alerts: Any, villages: Iterable[str], start: float, end: float, now: float,
              limit_s: float) -> dict[str, Component]:
    """Device alarms raised in [start, end) for the village, acknowledged within `limit_s`.

    Not judged: an alarm cleared by itself within the limit before anyone acknowledged it,
    and an alarm still open, unacknowledged and younger than the limit."""
    good: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    wanted = set(villages)
    for a in alerts.recent(ALERT_LIMIT, since=start):
        if a.raised_at >= end or a.village not in wanted or a.device_id is None:
            continue
        if a.type.startswith(EXCLUDED_ALERT_TYPES):
            continue
        deadline = a.raised_at + limit_s
        if a.acked_at is not None:
            total[a.village] += 1
            good[a.village] += a.acked_at <= deadline
        elif a.cleared_at is not None and a.cleared_at <= deadline:
            continue  # went away by itself in time
        elif now <= deadline:
            continue  # still within its limit
        else:
            total[a.village] += 1
    minutes = f"{limit_s / 60:g}"
    return {v: Component(good[v], total[v], f"限时 {minutes} 分钟内确认 {good[v]}/{total[v]} 条")
            for v in wanted}


def problems_on_time(problems: Iterable[Any], villages: Iterable[str], now: float) -> dict[str, Component]:
    """Problems whose deadline fell in the period (the caller selects them): verified or
    closed by the deadline. Rejected ones and those not done but not yet due are not judged."""
    good: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    wanted = set(villages)
    for p in problems:
        if p.village not in wanted or p.state == "rejected" or p.deadline is None:
            continue
        done = p.done_at()
        if done is not None:
            total[p.village] += 1
            good[p.village] += done <= p.deadline
        elif now > p.deadline:
            total[p.village] += 1
    return {v: Component(good[v], total[v], f"按期办结 {good[v]}/{total[v]} 件") for v in wanted}


def broadcast_delivery(store: Any, villages: Iterable[str], start: float, end: float,
                       now: float) -> dict[str, Component]:
    """Deliveries of the broadcast occurrences due in [start, end): `done` / judged, where a
    delivery is judged once it is final or past its expiry; `preempted` (a more urgent
    broadcast took the speaker) is not judged."""
    good: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    wanted = set(villages)
    occurrences = [r["id"] for r in store.occurrences_between(start, end) if r["nominal_at"] < end]
    for i in range(0, len(occurrences), 500):
        for d in store.deliveries_of_occurrences(occurrences[i:i + 500]):
            if d.village not in wanted or d.state in UNJUDGED_DELIVERY_STATES:
                continue
            if d.state not in TERMINAL_DELIVERY_STATES and d.expires_at > now:
                continue  # still on its way
            total[d.village] += 1
            good[d.village] += d.state == "done"
    return {v: Component(good[v], total[v], f"送达 {good[v]}/{total[v]} 次") for v in wanted}

