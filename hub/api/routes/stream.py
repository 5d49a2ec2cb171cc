"""The live stream for the wall screen: one WebSocket of state changes (hub.eventbus events).

Authentication: the socket is accepted first and then closed with 4401 when the token is
missing, invalid or revoked (a refused handshake reaches a browser only as 1006; 4401 makes
the wall screen show its login prompt). The token is checked again every
`REAUTH_EVERY_S`, so a revoke (API or `villagehub token revoke`) closes open streams too.
Events are shared by all clients; each connection redacts them for its own role (camera
credentials in stream URLs only reach admins).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from hub.api.deps import websocket_principal, websocket_token
from hub.api.redact import for_principal
from hub.services import Services

PING_EVERY_S = 20.0
REAUTH_EVERY_S = 1.0  # plus the token cache (hub.auth.TOKEN_CACHE_TTL_S): a revoke closes within 5 s
UNAUTHORIZED = 4401


router = APIRouter(prefix="/api/v1", tags=["stream"])


@router.websocket("/stream")
async def stream(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    # token checks may read SQLite: off the event loop
    principal = await asyncio.to_thread(websocket_principal, websocket, services)
    await websocket.accept()
    if principal is None:
        await websocket.close(code=UNAUTHORIZED, reason="missing or invalid token")
        return
    token = websocket_token(websocket)
    async with services.bus.subscribe() as events:
        await websocket.send_text(json.dumps({"type": "hello", "ts": services.clock.now(),
                                              "data": {"role": principal.role, "name": principal.name}}))
        receiver = asyncio.create_task(_drain_client(websocket))
        checked = last_sent = time.monotonic()
        try:
            while not receiver.done():
                try:
                    event = await asyncio.wait_for(events.get(), REAUTH_EVERY_S)
                except TimeoutError:
                    event = None
                now = time.monotonic()
                if now - checked >= REAUTH_EVERY_S:
                    checked = now
                    if await asyncio.to_thread(services.tokens.authenticate, token) is None:
                        await websocket.close(code=UNAUTHORIZED, reason="token revoked")
                        return
                if event is None:
                    if now - last_sent < PING_EVERY_S:
                        continue
                    event = {"type": "ping", "ts": services.clock.now(), "data": {}}
                last_sent = now
                await websocket.send_text(json.dumps(for_principal(principal, event), ensure_ascii=False))
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await receiver



async def _drain_client(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, so a closed socket is noticed at once."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await websocket.receive_text()
