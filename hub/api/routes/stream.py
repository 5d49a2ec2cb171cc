"""The live stream for the wall screen: one WebSocket of state changes (hub.eventbus events)."""

from __future__ import annotations

import asyncio
import contextlib
import json

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from hub.api.deps import websocket_principal
from hub.services import Services

PING_EVERY_S = 20.0


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["stream"])

    @router.websocket("/stream")
    async def stream(websocket: WebSocket) -> None:
        services: Services = websocket.app.state.services
        principal = websocket_principal(websocket, services)
        if principal is None:
            await websocket.close(code=4401, reason="missing or invalid token")
            return
        await websocket.accept()
        async with services.bus.subscribe() as events:
            await websocket.send_text(json.dumps({"type": "hello", "ts": services.clock.now(),
                                                  "data": {"role": principal.role, "name": principal.name}}))
            receiver = asyncio.create_task(_drain_client(websocket))
            try:
                while not receiver.done():
                    try:
                        event = await asyncio.wait_for(events.get(), PING_EVERY_S)
                    except TimeoutError:
                        event = {"type": "ping", "ts": services.clock.now(), "data": {}}
                    await websocket.send_text(json.dumps(event, ensure_ascii=False))
            except (WebSocketDisconnect, RuntimeError):
                pass
            finally:
                receiver.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await receiver

    return router


async def _drain_client(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, so a closed socket is noticed at once."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await websocket.receive_text()
