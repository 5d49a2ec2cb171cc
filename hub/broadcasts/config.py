"""The broadcast service's settings (filled from `Settings` by the composition root)."""

from __future__ import annotations

from dataclasses import dataclass

from hub.broadcasts.schedule import DEFAULT_GRACE_S, DEFAULT_QUIET_HOURS
from hub.quiethours import QuietHours
from hub.topics import DEFAULT_ROOT


@dataclass(frozen=True, slots=True)
class BroadcastConfig:
    topic_root: str = DEFAULT_ROOT
    tz: str = "Asia/Shanghai"  # VH_TZ: quiet hours and schedules without a zone
    grace_s: float = DEFAULT_GRACE_S  # a missed occurrence still fires when this late at most
    ack_timeout_s: float = 10.0  # resend the same play when no `received` came by then
    tick_s: float = 1.0
    quiet_hours: QuietHours = DEFAULT_QUIET_HOURS  # per-village overrides live in the database
    # Informational only: the MediaStore's own base_url builds the media URLs.
    media_base_url: str = "http://127.0.0.1:8000"
    # Send `stop` before a preempting play. Off by default: per PROTOCOL §6 the higher play
    # itself stops the current one, which the speaker then acks `preempted`.
    stop_before_preempt: bool = False
    settle_s: float = 3.0  # after start, before the first tick: presence arrives meanwhile
    flush_interval_s: float = 0.1  # batch the persistence of acks and heartbeats (0: each one)
