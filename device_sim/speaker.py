"""The loudspeaker's player: command handling as firmware does it (PROTOCOL §6).

Pure: `handle(cmd, now)` and `tick(now)` return the acks to send; nothing here
touches the network. `now` is the device's own clock (skew included), so a
skewed speaker misjudges `expires_at` exactly as real firmware would.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Final

SEEN_IDS_KEPT: Final = 4096
TTS_SECONDS_PER_CJK_CHAR: Final = 0.25
TTS_SECONDS_PER_WORD: Final = 0.4
DEFAULT_AUDIO_S: Final = 10.0
_CJK: Final = re.compile(r"[\u3000-\u9fff\uf900-\ufaff]")
_WORD: Final = re.compile(r"[A-Za-z0-9]+")


@dataclass(frozen=True, slots=True)
class Ack:
    cmd_id: str
    state: str
    reason: str | None = None


@dataclass(slots=True)
class Playing:
    cmd_id: str
    broadcast_id: str
    priority: int
    started: float
    ends_at: float


@dataclass(frozen=True, slots=True)
class PlayRecord:
    """What the speaker played: for tests and the demo."""

    cmd_id: str
    broadcast_id: str
    priority: int
    started: float
    ended: float
    outcome: str  # done | preempted | failed


def media_duration(media: Any, repeat: int = 1) -> float | None:
    """Seconds a `play` lasts: TTS by text length, audio by `duration_s`; None if unusable."""
    if not isinstance(media, dict):
        return None
    kind = media.get("type")
    if kind == "tts":
        text = media.get("text")
        if not isinstance(text, str) or not text.strip():
            return None
        seconds = (len(_CJK.findall(text)) * TTS_SECONDS_PER_CJK_CHAR
                   + len(_WORD.findall(text)) * TTS_SECONDS_PER_WORD)
        one = max(1.0, seconds)
    elif kind == "audio":
        if not isinstance(media.get("url"), str):
            return None
        d = media.get("duration_s", DEFAULT_AUDIO_S)
        if isinstance(d, bool) or not isinstance(d, int | float) or d <= 0:
            return None
        one = float(d)
    else:
        return None
    return one * max(1, repeat)


def _int_in(value: Any, lo: int, hi: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        return None
    return value


@dataclass
class SpeakerPlayer:
    volume: int = 60
    fault: bool = False
    current: Playing | None = None
    played: list[PlayRecord] = field(default_factory=list)
    executed: int = 0  # commands acted on (redeliveries excluded)
    _seen: OrderedDict[str, str] = field(default_factory=OrderedDict)

    @property
    def state(self) -> str:
        if self.fault:
            return "fault"
        return "playing" if self.current else "idle"

    def handle(self, cmd: dict[str, Any], now: float) -> list[Ack]:
        """One decoded command object → the acks to publish, in order."""
        cmd_id = cmd.get("id")
        if not isinstance(cmd_id, str) or not cmd_id or len(cmd_id) > 64:
            return []  # nothing to ack it with; the caller logs it
        if cmd_id in self._seen:
            return [Ack(cmd_id, self._seen[cmd_id], "duplicate")]
        acks = self._execute(cmd_id, cmd, now)
        self.executed += 1
        for a in acks:
            self._remember(a.cmd_id, a.state)
        return acks

    def tick(self, now: float) -> list[Ack]:
        """Finish the current play when its time is up."""
        cur = self.current
        if cur is None or now < cur.ends_at:
            return []
        self._finish(cur, now, "done")
        self._remember(cur.cmd_id, "done")
        return [Ack(cur.cmd_id, "done")]

    def set_fault(self, on: bool, now: float) -> list[Ack]:
        self.fault = on
        cur = self.current
        if on and cur is not None:
            self._finish(cur, now, "failed")
            self._remember(cur.cmd_id, "failed")
            return [Ack(cur.cmd_id, "failed", "speaker_fault")]
        return []

    # -- internals --------------------------------------------------------------

    def _remember(self, cmd_id: str, state: str) -> None:
        self._seen[cmd_id] = state
        self._seen.move_to_end(cmd_id)
        while len(self._seen) > SEEN_IDS_KEPT:
            self._seen.popitem(last=False)

    def _finish(self, cur: Playing, now: float, outcome: str) -> None:
        self.played.append(PlayRecord(cur.cmd_id, cur.broadcast_id, cur.priority,
                                      cur.started, now, outcome))
        self.current = None

    def _execute(self, cmd_id: str, cmd: dict[str, Any], now: float) -> list[Ack]:
        expires = cmd.get("expires_at")
        if isinstance(expires, int | float) and not isinstance(expires, bool) and now > expires:
            return [Ack(cmd_id, "expired")]
        action = cmd.get("action")
        if action == "play":
            return self._play(cmd_id, cmd, now)
        if action == "stop":
            return self._stop(cmd_id, cmd, now)
        if action == "set_volume":
            vol = _int_in(cmd.get("volume"), 0, 100)
            if vol is None:
                return [Ack(cmd_id, "rejected", "bad volume")]
            self.volume = vol
            return [Ack(cmd_id, "done")]
        return [Ack(cmd_id, "rejected", f"unknown action {action!r}"[:80])]

    def _play(self, cmd_id: str, cmd: dict[str, Any], now: float) -> list[Ack]:
        priority = _int_in(cmd.get("priority", 0), 0, 9)
        repeat = _int_in(cmd.get("repeat", 1), 1, 1000)
        volume = cmd.get("volume")
        duration = media_duration(cmd.get("media"), repeat or 1)
        if priority is None or repeat is None or duration is None:
            return [Ack(cmd_id, "rejected", "bad play command")]
        if volume is not None and _int_in(volume, 0, 100) is None:
            return [Ack(cmd_id, "rejected", "bad volume")]
        if self.fault:
            return [Ack(cmd_id, "received"), Ack(cmd_id, "failed", "speaker_fault")]
        acks: list[Ack] = []
        cur = self.current
        if cur is not None:
            if priority <= cur.priority:
                return [Ack(cmd_id, "rejected", "busy")]
            self._finish(cur, now, "preempted")
            self._remember(cur.cmd_id, "preempted")
            acks.append(Ack(cur.cmd_id, "preempted", f"preempted by {cmd_id}"))
        if volume is not None:
            self.volume = volume
        broadcast_id = cmd.get("broadcast_id")
        self.current = Playing(cmd_id, broadcast_id if isinstance(broadcast_id, str) else "",
                               priority, now, now + duration)
        acks += [Ack(cmd_id, "received"), Ack(cmd_id, "playing")]
        return acks

    def _stop(self, cmd_id: str, cmd: dict[str, Any], now: float) -> list[Ack]:
        cur = self.current
        only = cmd.get("broadcast_id")
        acks: list[Ack] = []
        if cur is not None and (only is None or only == cur.broadcast_id):
            self._finish(cur, now, "done")
            self._remember(cur.cmd_id, "done")
            acks.append(Ack(cur.cmd_id, "done", "stopped"))
        acks.append(Ack(cmd_id, "done"))
        return acks

    def heartbeat_state(self) -> dict[str, Any]:
        return {"volume": self.volume, "state": self.state,
                "playing": self.current.cmd_id if self.current else None}
