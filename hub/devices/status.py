"""PROTOCOL §2 status: the retained `online` / `offline` (also the device's Will). Pure."""

from __future__ import annotations

from typing import Literal

from hub.messages import Rejection

StatusValue = Literal["online", "offline"]


def parse_status(device_id: str, payload: bytes) -> StatusValue | Rejection:
    """`online` or `offline` (surrounding whitespace ignored), else a `status` rejection."""
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        return Rejection("status", "not_utf8", device_id)
    if text == "online":
        return "online"
    if text == "offline":
        return "offline"
    return Rejection("status", "bad_value", device_id, repr(text[:32]))
