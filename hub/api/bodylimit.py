"""Request body limits, enforced as the body streams in (ASGI middleware).

Every body is capped at `MAX_BODY_BYTES` (JSON) unless its route is one of
`LARGE_BODY_ROUTES`, matched as a route (the whole path; `{name}` is one path segment),
never as a string prefix. Those routes take tens of megabytes, so
the caller's bearer token and role are checked *before* a byte of the body is read:
an anonymous or under-privileged client gets 401/403 (429 past the failure limit)
without making the hub receive its upload. The bytes are counted as the app reads
them, and the read that passes the limit fails with 413 (a declared Content-Length over
the limit is refused at once). Uploads are never collected here; a JSON body (at most
`MAX_BODY_BYTES`, which the app collects anyway) is held until its last chunk, and one nested
deeper than `hub.jsondepth.MAX_DEPTH` fails that read with 400 before the app decodes it: the
decoder would recurse to the interpreter's limit (see hub/jsondepth.py), and it runs before
any dependency, authentication included.
"""

from __future__ import annotations

import re
from typing import Final

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.api.deps import AuthFailure, bearer_token, check_token
from hub.jsondepth import depth_error, too_deep
from hub.roles import Role
from hub.services import Services

MAX_BODY_BYTES: Final = 1 * 1024 * 1024  # JSON bodies
# Route path → (limit, role). `role` must be the route's own rule (checked by
# tests/e2e/test_api_security.py against the route's `require(role)` dependency).
LARGE_BODY_ROUTES: Final[dict[str, tuple[int, Role]]] = {
    "/api/v1/media": (50 * 1024 * 1024, "operator"),
    "/api/v1/registry/import": (32 * 1024 * 1024, "admin"),
    # problem photos: an 8 MiB JPEG plus the multipart framing
    "/api/v1/problems/{problem_id}/photos": (9 * 1024 * 1024, "operator"),
}
BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})


def _route_pattern(route: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}/]+\})", route)
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts))


_LARGE: Final = [(_route_pattern(route), limit, role) for route, (limit, role) in LARGE_BODY_ROUTES.items()]


def large_body_rule(path: str) -> tuple[int, Role] | None:
    """(limit, role) when `path` is one of the large-body routes, else None."""
    for pattern, limit, role in _LARGE:
        if pattern.fullmatch(path):
            return limit, role
    return None


def body_limit(path: str) -> int:
    """The body limit of a request path: its large-body route's, else the JSON limit."""
    large = large_body_rule(path)
    return large[0] if large else MAX_BODY_BYTES


def decodes_as_json(content_type: str | None) -> bool:
    """Whether FastAPI decodes a body of this Content-Type as JSON (none given counts)."""
    if not content_type:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": f"request body over {limit} bytes"}, status_code=413)


class BodyLimit:
    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services

    def _refusal(self, scope: Scope, role: Role) -> Response | None:
        """401/403/429 for a caller who may not send this route a body; None to go on."""
        request = Request(scope)
        client = request.client.host if request.client else "unknown"
        try:
            principal = check_token(bearer_token(request.headers), client, self.services)
        except AuthFailure as exc:
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        if not principal.allows(role):
            return JSONResponse({"detail": f"this needs the {role} role"}, status_code=403)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        large = large_body_rule(scope["path"])
        limit = large[0] if large else MAX_BODY_BYTES
        if large is not None:
            refusal = self._refusal(scope, large[1])
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await JSONResponse({"detail": "bad Content-Length"}, status_code=400)(scope, receive, send)
                return
            if declared > limit:
                await _too_large(limit)(scope, receive, send)
                return

        received = 0
        started = False
        json_chunks: list[bytes] | None = (
            [] if large is None and decodes_as_json(headers.get("content-type")) else None)

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > limit:
                    # FastAPI re-raises an HTTPException met while reading the body; the app's
                    # exception middleware turns it into the answer.
                    raise HTTPException(413, f"request body over {limit} bytes")
                if json_chunks is not None:
                    json_chunks.append(chunk)
                    if not message.get("more_body", False):
                        body = json_chunks[0] if len(json_chunks) == 1 else b"".join(json_chunks)
                        json_chunks.clear()
                        if too_deep(body):
                            raise HTTPException(400, f"JSON body {depth_error()}")
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched_send)
        except HTTPException as exc:
            if exc.status_code != 413 or started:
                raise
            await _too_large(limit)(scope, receive, send)
