"""Per-camera image health with hysteresis (pure: no I/O, no clock).

Each frame's metrics give the conditions seen *in that frame* (`detect`); a condition
is raised after `raise_after` consecutive frames showing it and cleared after
`clear_after` consecutive frames without it (`CameraHealth.update`), so one odd frame
neither raises nor clears an alert. The camera's `health` is the most important active
condition (PRECEDENCE) or `ok`. IR night mode (a colourless image) is normal: it only
selects the night reference for the moved check.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # numpy and OpenCV are imported on the first analysed frame, not with the service
    from hub.snapshots.analysis import FrameMetrics, Signature


class Condition(StrEnum):
    FROZEN = "frozen"
    COVERED = "covered"
    DARK = "dark"
    MOVED = "moved"
    BLURRED = "blurred"


HEALTH_OK: Final = "ok"
PRECEDENCE: Final = (Condition.FROZEN, Condition.COVERED, Condition.DARK, Condition.MOVED, Condition.BLURRED)
HEALTH_STATES: Final = (HEALTH_OK, *(c.value for c in PRECEDENCE))


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Defaults for every camera; a camera's overrides replace single fields (`with_overrides`)."""

    dark_brightness: float = 30.0  # mean grey (0–255) below this: dark
    covered_uniform_fraction: float = 0.75  # share of textureless blocks at or above this: covered
    blurred_sharpness: float = 50.0  # Laplacian variance (analysis scale) below this: blurred
    frozen_difference: float = 0.05  # mean grey difference to the previous frame below this: frozen
    moved_change: float = 0.4  # structural change from the reference above this: moved
    night_colourfulness: float = 3.0  # colourfulness below this: IR night mode (normal)
    raise_after: int = 3  # consecutive frames showing a condition before it is raised
    clear_after: int = 2  # consecutive frames without it before it is cleared
    reference_frames: int = 3  # clean frames averaged into a new reference
    reference_rate: float = 0.05  # how fast the reference follows slow changes (seasons, leaves)

    def with_overrides(self, overrides: Mapping[str, float | int]) -> Thresholds:
        """A copy with some fields replaced; unknown names or bad values raise ValueError."""
        names = {f.name: f.type for f in dataclasses.fields(self)}
        changes: dict[str, float | int] = {}
        for name, value in overrides.items():
            if name not in names:
                raise ValueError(f"unknown snapshot threshold {name!r}; known: {', '.join(sorted(names))}")
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"threshold {name} must be a number ≥ 0, got {value!r}")
            changes[name] = int(value) if names[name] == "int" else float(value)
        result = dataclasses.replace(self, **changes)  # type: ignore[arg-type]
        if result.raise_after < 1 or result.clear_after < 1 or result.reference_frames < 1:
            raise ValueError("raise_after, clear_after and reference_frames must be ≥ 1")
        return result


def detect(
    m: FrameMetrics, *, previous: Signature | None, reference: Signature | None, t: Thresholds
) -> frozenset[Condition]:
    """The conditions one frame shows on its own."""
    from hub.snapshots.analysis import frame_difference, structural_change

    seen: set[Condition] = set()
    dark = m.brightness < t.dark_brightness
    if dark:
        seen.add(Condition.DARK)
    elif m.uniform_fraction >= t.covered_uniform_fraction:
        seen.add(Condition.COVERED)
    elif m.sharpness < t.blurred_sharpness:
        seen.add(Condition.BLURRED)
    if previous is not None and frame_difference(m.signature, previous) < t.frozen_difference:
        seen.add(Condition.FROZEN)
    if (
        reference is not None
        and not seen & {Condition.DARK, Condition.COVERED}
        and structural_change(m.signature, reference) > t.moved_change
    ):
        seen.add(Condition.MOVED)
    return frozenset(seen)


@dataclass(frozen=True, slots=True)
class HealthUpdate:
    health: str
    seen: frozenset[Condition]  # in this frame
    active: frozenset[Condition]  # after hysteresis
    raised: tuple[Condition, ...]
    cleared: tuple[Condition, ...]
    night: bool
    change: float | None  # structural change from the reference, when there is one
    frame_diff: float | None  # mean grey difference to the previous frame, when there is one


@dataclass
class CameraHealth:
    """The mutable health state of one camera; `update` is called once per analysed frame, in order."""

    active: set[Condition] = field(default_factory=set)
    on_streak: dict[Condition, int] = field(default_factory=dict)
    off_streak: dict[Condition, int] = field(default_factory=dict)
    previous: Signature | None = None
    references: dict[str, Signature] = field(default_factory=dict)  # "day" | "night"
    learning: dict[str, tuple[Signature, int]] = field(default_factory=dict)

    @property
    def health(self) -> str:
        return next((c.value for c in PRECEDENCE if c in self.active), HEALTH_OK)

    def reset_reference(self) -> None:
        """Forget the reference views (after a camera is re-aimed on purpose)."""
        self.references.clear()
        self.learning.clear()
        self.active.discard(Condition.MOVED)
        self.on_streak.pop(Condition.MOVED, None)

    def update(self, m: FrameMetrics, t: Thresholds) -> HealthUpdate:
        from hub.snapshots.analysis import frame_difference, structural_change

        night = m.colourfulness < t.night_colourfulness
        mode = "night" if night else "day"
        reference = self.references.get(mode)
        seen = detect(m, previous=self.previous, reference=reference, t=t)
        raised: list[Condition] = []
        cleared: list[Condition] = []
        for cond in PRECEDENCE:
            if cond in seen:
                self.on_streak[cond] = self.on_streak.get(cond, 0) + 1
                self.off_streak[cond] = 0
                if cond not in self.active and self.on_streak[cond] >= t.raise_after:
                    self.active.add(cond)
                    raised.append(cond)
            else:
                self.off_streak[cond] = self.off_streak.get(cond, 0) + 1
                self.on_streak[cond] = 0
                if cond in self.active and self.off_streak[cond] >= t.clear_after:
                    self.active.discard(cond)
                    cleared.append(cond)
        change = structural_change(m.signature, reference) if reference is not None else None
        frame_diff = frame_difference(m.signature, self.previous) if self.previous is not None else None
        if not seen and Condition.MOVED not in self.active:
            self._learn(mode, m.signature, t)
        self.previous = m.signature
        return HealthUpdate(
            health=self.health, seen=seen, active=frozenset(self.active),
            raised=tuple(raised), cleared=tuple(cleared), night=night, change=change,
            frame_diff=frame_diff,
        )

    def _learn(self, mode: str, sig: Signature, t: Thresholds) -> None:
        """Average the first clean frames into the reference, then follow slow changes."""
        import numpy as np

        ref = self.references.get(mode)
        if ref is not None:
            self.references[mode] = np.asarray(
                (1.0 - t.reference_rate) * ref + t.reference_rate * sig, dtype=np.float32
            )
            return
        acc, n = self.learning.get(mode, (np.zeros_like(sig), 0))
        acc, n = np.asarray(acc + sig, dtype=np.float32), n + 1
        if n >= t.reference_frames:
            self.references[mode] = np.asarray(acc / n, dtype=np.float32)
            self.learning.pop(mode, None)
        else:
            self.learning[mode] = (acc, n)
