"""Fault scenarios: a small YAML/JSON format → a timeline of fault switches (pure).

```yaml
seed: 7                     # optional: which devices a `share` picks
faults:
  - fault: dark             # one of FAULTS
    devices: [cam-0001]     # explicit ids, and/or
    share: 0.1              # this fraction of the devices matching kind/village/group
    kind: camera            # optional filters for `share`
    village: v01
    at: 30                  # seconds after the fleet starts (default 0)
    duration: 120           # then the fault clears (default: stays)
    params: {skew_s: 900}   # fault-specific, see FAULTS
```
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

# fault → (kinds it applies to, default params). The docs table mirrors this.
FAULTS: Final[dict[str, tuple[frozenset[str], dict[str, Any]]]] = {
    "offline_clean": (frozenset({"camera", "speaker", "light"}), {}),
    "offline_unclean": (frozenset({"camera", "speaker", "light"}), {}),
    "flapping": (frozenset({"camera", "speaker", "light"}), {"period_s": 20.0, "unclean": True}),
    "dark": (frozenset({"camera"}), {}),
    "blurred": (frozenset({"camera"}), {}),
    "covered": (frozenset({"camera"}), {}),
    "frozen": (frozenset({"camera"}), {}),
    "moved": (frozenset({"camera"}), {"px": 60}),
    "clock_skew": (frozenset({"camera", "speaker", "light"}), {"skew_s": 900.0}),
    "drop_heartbeats": (frozenset({"camera", "speaker", "light"}), {"every": 3}),
    "malformed": (frozenset({"camera", "speaker", "light"}), {"every": 1}),
    "speaker_fault": (frozenset({"speaker"}), {}),
    "amp_overheat": (frozenset({"speaker"}), {"temp_c": 92.0}),
    "power_loss": (frozenset({"camera", "speaker", "light"}), {}),
    "lamp_fault": (frozenset({"light"}), {"code": "led_open"}),
    "battery_dying": (frozenset({"light"}), {"pct": 15.0, "drain_pct_h": 20.0}),
}


class ScenarioError(ValueError):
    pass


class FaultRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fault: str
    devices: list[str] = Field(default_factory=list)
    share: float | None = Field(default=None, ge=0.0, le=1.0)
    kind: str | None = None
    village: str | None = None
    group: str | None = None
    at: float = Field(default=0.0, ge=0.0)
    duration: float | None = Field(default=None, gt=0.0)
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known(self) -> FaultRule:
        if self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}; known: {', '.join(FAULTS)}")
        if not self.devices and self.share is None:
            raise ValueError("give `devices` or `share`")
        unknown = set(self.params) - set(FAULTS[self.fault][1])
        if unknown:
            raise ValueError(f"unknown params for {self.fault}: {sorted(unknown)}")
        return self


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seed: int = 1
    faults: list[FaultRule] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class DeviceRef:
    id: str
    kind: str
    village: str | None = None
    group: str | None = None


@dataclass(frozen=True, slots=True, order=True)
class FaultSwitch:
    """At `at` seconds after start, switch `fault` on (or off) for one device."""

    at: float
    device_id: str
    fault: str
    on: bool
    params: dict[str, Any] = field(default_factory=dict, compare=False)


def parse_scenario(text: str) -> Scenario:
    try:
        data = yaml.safe_load(text)  # JSON is YAML too
    except yaml.YAMLError as e:
        raise ScenarioError(f"scenario is not YAML/JSON: {e}") from e
    if isinstance(data, list):
        data = {"faults": data}
    try:
        return Scenario.model_validate(data or {})
    except ValidationError as e:
        msgs = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg'].removeprefix('Value error, ')}"
                for err in e.errors()]
        raise ScenarioError("invalid scenario:\n" + "\n".join(msgs)) from e


def load_scenario(path: str | Path) -> Scenario:
    return parse_scenario(Path(path).read_text(encoding="utf-8"))


def plan(scenario: Scenario, devices: list[DeviceRef]) -> list[FaultSwitch]:
    """Which device gets which fault when: deterministic for a given seed."""
    rng = random.Random(scenario.seed)
    by_id = {d.id: d for d in devices}
    out: list[FaultSwitch] = []
    for rule in scenario.faults:
        kinds, defaults = FAULTS[rule.fault]
        params = {**defaults, **rule.params}
        chosen: list[str] = []
        for dev_id in rule.devices:
            if dev_id not in by_id:
                raise ScenarioError(f"fault {rule.fault}: unknown device {dev_id!r}")
            chosen.append(dev_id)
        if rule.share:
            pool = [d.id for d in devices
                    if d.kind in kinds and d.id not in chosen
                    and (rule.kind is None or d.kind == rule.kind)
                    and (rule.village is None or d.village == rule.village)
                    and (rule.group is None or d.group == rule.group)]
            n = min(len(pool), max(1, round(rule.share * len(pool)))) if pool else 0
            chosen += sorted(rng.sample(pool, n))
        for dev_id in chosen:
            if by_id[dev_id].kind not in kinds:
                raise ScenarioError(f"fault {rule.fault} does not apply to {by_id[dev_id].kind} {dev_id}")
            out.append(FaultSwitch(rule.at, dev_id, rule.fault, True, params))
            if rule.duration is not None:
                out.append(FaultSwitch(rule.at + rule.duration, dev_id, rule.fault, False, params))
    return sorted(out)
