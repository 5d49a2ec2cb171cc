"""Where speakers may fetch broadcast audio from (issue 11 item 8): the hub's own copy of a file,
or a URL under a prefix of `VH_MEDIA_URL_ALLOW`. Pure URL checks."""

from __future__ import annotations

from urllib.parse import SplitResult, unquote, urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_allow_list(raw: str) -> tuple[str, ...]:
    """`VH_MEDIA_URL_ALLOW`: comma-separated http(s) URL prefixes (ValueError naming a bad one)."""
    prefixes = []
    for part in raw.split(","):
        prefix = part.strip()
        if not prefix:
            continue
        u = urlsplit(prefix)
        if u.scheme.lower() not in _DEFAULT_PORTS or not u.hostname or "@" in u.netloc \
                or u.query or u.fragment:
            raise ValueError(f"VH_MEDIA_URL_ALLOW: {prefix!r} is not an http(s) URL prefix "
                             "such as https://cdn.example.org/audio/")
        prefixes.append(prefix)
    return tuple(prefixes)


def _origin(u: SplitResult) -> tuple[str, str, int | None]:
    scheme = u.scheme.lower()
    try:
        port = u.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        port = -1
    return scheme, (u.hostname or "").lower(), port


def _has_dot_segments(path: str) -> bool:
    for _ in range(3):  # %252e%252e is %2e%2e is ..
        decoded = unquote(path)
        if decoded == path:
            break
        path = decoded
    return any(seg in (".", "..") for seg in path.replace("\\", "/").split("/"))


def _under(u: SplitResult, prefix: str) -> bool:
    p = urlsplit(prefix)
    base = p.path if p.path.endswith("/") else p.path + "/"
    return _origin(u) == _origin(p) and u.path.startswith(base)


def media_url_error(url: str, sha256: str, hub_url: str, allow: tuple[str, ...]) -> str | None:
    """Why speakers must not be sent to `url`, or None: only the hub's own copy of this file
    (`{hub_url}/media/{sha256}`) or a URL under a prefix of `allow` (VH_MEDIA_URL_ALLOW)."""
    u = urlsplit(url)
    hub = urlsplit(hub_url)
    own = hub.path.rstrip("/") + f"/media/{sha256}"
    if u.username is not None or u.password is not None:
        why = "must not carry credentials"
    elif _has_dot_segments(u.path):
        why = "must not contain . or .. path segments"
    else:
        is_own = _origin(u) == _origin(hub) and u.path == own and not u.query and not u.fragment
        if is_own or any(_under(u, prefix) for prefix in allow):
            return None
        why = "is neither the hub's own media nor under an allowed prefix"
    allowed = ", ".join(allow) if allow else "none set"
    return (f"{why}: use {hub_url.rstrip('/')}/media/{sha256} (upload the file to /api/v1/media) "
            f"or a URL under a prefix in VH_MEDIA_URL_ALLOW ({allowed})")
