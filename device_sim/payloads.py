"""Device-side payload builders for the wire contract (PROTOCOL.md §2–6).

Written from the firmware's point of view and independent of `hub/`: these
functions build what a device sends; they never parse what a hub accepts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final, Literal

Kind = Literal["camera", "speaker", "light"]
ACK_STATES: Final = frozenset(
    {"received", "playing", "done", "failed", "rejected", "preempted", "expired"}
)
EVENT_TYPES: Final = ("motion", "tamper", "fault", "button", "power_loss", "power_restored")
ONLINE: Final = b"online"
OFFLINE: Final = b"offline"
FIRMWARE: Final = "vsim-1.4.2"


@dataclass(frozen=True, slots=True)
class DeviceTopics:
    """The topics one device writes and reads under a root (default `vhub/v1`)."""

    root: str
    device_id: str

    def _t(self, channel: str) -> str:
        return f"{self.root}/dev/{self.device_id}/{channel}"

    @property
    def status(self) -> str:
        return self._t("status")

    @property
    def heartbeat(self) -> str:
        return self._t("heartbeat")

    @property
    def snapshot(self) -> str:
        return self._t("snapshot")

    @property
    def event(self) -> str:
        return self._t("event")

    @property
    def ack(self) -> str:
        return self._t("ack")

    @property
    def cmd(self) -> str:
        return self._t("cmd")

    @property
    def hub_status(self) -> str:
        return f"{self.root}/hub/status"


def dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def common_heartbeat(
    kind: Kind, *, ts: float, seq: int, interval_s: float, uptime_s: int, rssi_dbm: int
) -> dict[str, Any]:
    return {
        "kind": kind,
        "ts": round(ts, 3),
        "seq": seq,
        "interval_s": interval_s,
        "uptime_s": uptime_s,
        "rssi_dbm": rssi_dbm,
        "fw": FIRMWARE,
    }


def event(type_: str, ts: float, detail: dict[str, Any] | None = None) -> bytes:
    return dumps({"type": type_, "ts": round(ts, 3), "detail": detail or {}})


def ack(cmd_id: str, state: str, ts: float, reason: str | None = None) -> bytes:
    if state not in ACK_STATES:
        raise ValueError(f"unknown ack state {state!r}")
    body: dict[str, Any] = {"id": cmd_id, "state": state, "ts": round(ts, 3)}
    if reason:
        body["reason"] = reason
    return dumps(body)


# Malformed payloads a broken firmware sends (fault `malformed`). Each is wrong in
# a way PROTOCOL §3 names: not JSON, not an object, kind missing/wrong, fields of a
# wrong type or out of range.
def malformed_heartbeats(kind: Kind, ts: float, seq: int) -> list[bytes]:
    return [
        b"{not json",
        b"[1, 2, 3]",
        dumps({"ts": ts, "seq": seq}),
        dumps({"kind": "toaster", "ts": ts}),
        dumps({"kind": kind, "ts": ts, "seq": seq, "uptime_s": "long", "rssi_dbm": 3.5,
               "fw": "x" * 40, "interval_s": -5}),
        b"\xff\xfe\x00garbage",
    ]
