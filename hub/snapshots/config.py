"""Settings of the snapshot service (wired from hub.settings by the composition root)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

from hub.snapshots import DEFAULT_MAX_PIXELS
from hub.snapshots.health import Thresholds


@dataclass(frozen=True, slots=True)
class SnapshotConfig:
    max_bytes: int = 4 * 1024 * 1024  # PROTOCOL §4 default
    max_pixels: int = DEFAULT_MAX_PIXELS  # PROTOCOL §4 default (40 MP)
    workers: int = 0  # 0: one per CPU core
    executor: Literal["thread", "process"] = "thread"  # threads measured faster here (docs/snapshots.md)
    max_pending_bytes: int = 256 * 1024 * 1024  # all cameras' waiting snapshots together
    stale_after_s: float = 900.0  # no snapshot for this long while heartbeats are fresh: stale
    heartbeat_fresh_s: float = 120.0  # a heartbeat younger than this counts as fresh
    clock_skew_s: float = 300.0  # a device `ts` further than this from the hub clock is not trusted
    command_ttl_s: float = 30.0  # expires_at of the `snapshot` command
    max_wait_s: float = 30.0  # longest wait a snapshot-request may ask for
    thresholds: Thresholds = field(default_factory=Thresholds)

    @property
    def worker_count(self) -> int:
        return self.workers or max(1, os.cpu_count() or 1)
