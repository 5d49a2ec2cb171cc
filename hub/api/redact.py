"""Camera credentials never leave the hub below admin: strip `user:password@` from URLs (pure).

Stream URLs (`rtsp://user:password@host/…`) come from the registry and from heartbeats.
Every API answer and stream event that can carry one goes through these helpers for
callers below admin: device detail (registry and heartbeat values) and WebSocket events.
"""

from __future__ import annotations

import re
from typing import Final, TypeVar

from hub.auth import Principal

T = TypeVar("T")

# scheme "://" then the userinfo: everything of the authority up to its last "@". The authority
# ends at "/", "?", "#" or whitespace; `"`, `\`, `<` and `>` are never in a valid URL, so a URL
# inside JSON text (an event's `detail`) ends there too.
_USERINFO: Final = re.compile(r"""(?i)\b([a-z][a-z0-9+.\-]*://)[^\s/?#"\\<>]*@""")


def redact_stream_url(url: str | None) -> str | None:
    """`rtsp://user:pw@host:554/x` → `rtsp://host:554/x`; anything else unchanged."""
    if not url or "@" not in url:
        return url
    return _USERINFO.sub(r"\1", url)


def redact_urls(value: T) -> T:
    """`value` with the userinfo of every URL in every string removed (dicts and lists walked).

    Returns `value` itself when nothing needed redacting, so shared events are never changed.
    """
    if isinstance(value, str):
        if "@" not in value:
            return value
        redacted, n = _USERINFO.subn(r"\1", value)
        return redacted if n else value  # type: ignore[return-value]
    if isinstance(value, dict):
        out = {k: redact_urls(v) for k, v in value.items()}
        return value if all(out[k] is v for k, v in value.items()) else out  # type: ignore[return-value]
    if isinstance(value, list | tuple):
        items = [redact_urls(v) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else type(value)(items)
    return value


def sees_credentials(who: Principal) -> bool:
    """Only admins see stream URLs with their credentials."""
    return who.allows("admin")


def for_principal(who: Principal, value: T) -> T:
    """`value` as `who` may see it."""
    return value if sees_credentials(who) else redact_urls(value)
