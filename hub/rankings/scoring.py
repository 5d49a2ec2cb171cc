"""Scores and ranks (pure). See docs/rankings.md for every formula.

Each component is a ratio `value` in [0, 1] (or no data); its score is `100 × value`, and a
component with no data scores 100 with the detail "无数据". The village's score is the
weighted mean of its component scores, `Σ wᵢ·sᵢ / Σ wᵢ`, rounded to one decimal. Villages
with equal (rounded) scores share a rank and the next rank is skipped (1, 2, 2, 4).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

COMPONENTS: Final[tuple[str, ...]] = ("availability", "alarm_ack", "problems_on_time", "broadcast_delivery")
DEFAULT_WEIGHTS: Final[dict[str, float]] = {
    "availability": 0.4, "alarm_ack": 0.2, "problems_on_time": 0.25, "broadcast_delivery": 0.15,
}
NO_DATA: Final = "无数据"
Trend = Literal["up", "down", "same", "new"]


def parse_weights(text: str) -> dict[str, float]:
    """`availability=0.4,alarm_ack=0.2,…` → weights; components left out weigh 0.

    ValueError names the bad part: unknown component, not a number, negative, all zero.
    """
    weights = dict.fromkeys(COMPONENTS, 0.0)
    seen = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, raw = part.partition("=")
        name = name.strip()
        if not sep:
            raise ValueError(f"{part!r}: use name=weight")
        if name not in weights:
            raise ValueError(f"unknown component {name!r}; known: {', '.join(COMPONENTS)}")
        if name in seen:
            raise ValueError(f"{name!r} is given twice")
        try:
            w = float(raw)
        except ValueError:
            raise ValueError(f"{name}: {raw.strip()!r} is not a number") from None
        if not math.isfinite(w) or w < 0:
            raise ValueError(f"{name}: the weight must be a finite number ≥ 0")
        weights[name] = w
        seen.add(name)
    if not any(weights.values()):
        raise ValueError("at least one component needs a weight above 0")
    return weights


@dataclass(frozen=True, slots=True)
class Component:
    """One measured component of one village: `good` of `total` (no data when total is 0)."""

    good: float
    total: float
    detail: str = ""

    @property
    def value(self) -> float | None:
        return None if self.total <= 0 else max(0.0, min(1.0, self.good / self.total))


def component_score(c: Component) -> float:
    v = c.value
    return 100.0 if v is None else round(100.0 * v, 1)


def village_score(components: Mapping[str, Component], weights: Mapping[str, float]) -> float:
    total_w = sum(weights.get(k, 0.0) for k in COMPONENTS)
    if total_w <= 0:
        raise ValueError("the weights add up to 0")
    s = sum(weights.get(k, 0.0) * component_score(components.get(k, Component(0, 0))) for k in COMPONENTS)
    return round(s / total_w + 1e-9, 1)


def breakdown(components: Mapping[str, Component], weights: Mapping[str, float]) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for k in COMPONENTS:
        c = components.get(k, Component(0, 0))
        v = c.value
        out[k] = {"value": None if v is None else round(v, 4), "score": component_score(c),
                  "weight": weights.get(k, 0.0), "detail": c.detail if v is not None else NO_DATA}
    return out


def has_data(components: Mapping[str, Component]) -> bool:
    return any(c.value is not None for c in components.values())


def rank(scores: Mapping[str, float]) -> list[tuple[int, str, float]]:
    """(rank, key, score), best first; equal scores share a rank (competition ranking),
    ties listed by key so the order is stable."""
    ordered = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    out: list[tuple[int, str, float]] = []
    for i, (key, score) in enumerate(ordered):
        r = out[-1][0] if out and out[-1][2] == score else i + 1
        out.append((r, key, score))
    return out


def trend(rank_now: int, rank_before: int | None) -> Trend:
    if rank_before is None:
        return "new"
    if rank_now < rank_before:
        return "up"
    if rank_now > rank_before:
        return "down"
    return "same"


def online_seconds(transitions: Sequence[tuple[float, bool]], start: float, end: float) -> tuple[float, float]:
    """(online seconds, known seconds) of one device in [start, end) from its presence
    transitions (time, online) in time order, including the last one before `start`.
    Time before the first known transition is unknown and not counted."""
    if end <= start:
        return 0.0, 0.0
    online = known = 0.0
    state: bool | None = None
    t_prev = start
    for t, is_online in transitions:
        if t >= end:
            break
        if t <= start:
            state = is_online
            continue
        if state is not None:
            known += t - t_prev
            online += (t - t_prev) if state else 0.0
        state, t_prev = is_online, t
    if state is not None:
        known += end - t_prev
        online += (end - t_prev) if state else 0.0
    return online, known
