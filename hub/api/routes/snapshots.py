"""Camera snapshot routes (PROTOCOL §7): latest JPEG, thumbnail, history, health, snapshot-request.

Handlers are plain `def`: FastAPI runs them in its thread pool, so file reads and the
optional wait for a camera's answer never block the event loop.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status

from hub.api.deps import Operator, SnapshotsDep, Viewer
from hub.api.schemas.snapshots import CameraHealth, HistoryEntry, HistoryList, SnapshotRequestResult
from hub.topics import is_valid_id

JPEG = "image/jpeg"
_IMAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {JPEG: {}}, "description": "the JPEG"},
    404: {"description": "unknown device or no snapshot"},
}


def _image(data: bytes | None, ts: Any = None) -> Response:
    if data is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no snapshot")
    headers = {"Cache-Control": "no-store"}
    if ts is not None:
        headers["X-Snapshot-Ts"] = str(ts)
    return Response(data, media_type=JPEG, headers=headers)


def _device(device_id: str) -> str:
    """A path id outside the id grammar can name no device (and never reaches the file store)."""
    if not is_valid_id(device_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown device {device_id!r}")
    return device_id


DeviceId = Annotated[str, Depends(_device)]

router = APIRouter(prefix="/api/v1", tags=["snapshots"])


@router.get("/devices/{device_id}/snapshot", responses=_IMAGE_RESPONSES,
            response_class=Response, summary="The camera's latest snapshot (JPEG)")
def latest(_: Viewer, device_id: DeviceId, service: SnapshotsDep) -> Response:
    return _image(*service.latest_jpeg(device_id))


@router.get("/devices/{device_id}/thumbnail", responses=_IMAGE_RESPONSES,
            response_class=Response, summary="A small JPEG of the latest snapshot (wall screen)")
def thumbnail(_: Viewer, device_id: DeviceId, service: SnapshotsDep) -> Response:
    return _image(*service.latest_jpeg(device_id, thumbnail=True))


@router.get("/devices/{device_id}/snapshots", response_model=HistoryList,
            summary="The camera's snapshot history, newest first")
def history(_: Viewer, device_id: DeviceId, service: SnapshotsDep) -> HistoryList:
    items = [
        HistoryEntry(id=it.id, ts=it.ts, health=it.health, bytes=it.bytes,
                     url=f"/api/v1/devices/{device_id}/snapshots/{it.id}")
        for it in service.history(device_id)
    ]
    return HistoryList(device=device_id, items=items)


@router.get("/devices/{device_id}/snapshots/{item_id}", responses=_IMAGE_RESPONSES,
            response_class=Response, summary="One snapshot of the history (JPEG)")
def history_item(_: Viewer, device_id: DeviceId, item_id: int, service: SnapshotsDep) -> Response:
    return _image(service.history_jpeg(device_id, item_id), item_id / 1000.0)


@router.get("/devices/{device_id}/camera-health", response_model=CameraHealth,
            summary="Image health of one camera (ok, dark, blurred, covered, frozen, moved; stale)")
def camera_health(_: Viewer, device_id: DeviceId, service: SnapshotsDep) -> CameraHealth:
    health = service.camera_health(device_id)
    if health is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no snapshot from this camera yet")
    return CameraHealth(**health)


@router.get("/cameras/health", response_model=list[CameraHealth],
            summary="Image health of every camera that sent a snapshot")
def all_health(_: Viewer, service: SnapshotsDep) -> list[CameraHealth]:
    return [CameraHealth(**h) for h in service.all_health()]


@router.post("/devices/{device_id}/snapshot-request",
             status_code=status.HTTP_202_ACCEPTED, response_model=SnapshotRequestResult,
             summary="Ask a camera for a snapshot now (PROTOCOL §6 `snapshot` command)")
def snapshot_request(
    _: Operator,
    device_id: DeviceId,
    service: SnapshotsDep,
    wait: Annotated[float, Query(ge=0, le=30, description="seconds to wait for the answer")] = 0,
) -> SnapshotRequestResult:
    if not service.knows(device_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown device {device_id!r}")
    try:
        r = service.request_snapshot(device_id, wait_s=wait)
    except RuntimeError as exc:  # the MQTT client is not connected
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
    return SnapshotRequestResult(command_id=r.command_id, device=r.device_id, state=r.state,
                                 expires_at=r.expires_at, snapshot=r.snapshot)


@router.post("/devices/{device_id}/camera-reference/reset",
             status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
             summary="Forget the camera's reference view after it was re-aimed on purpose")
def reset_reference(_: Operator, device_id: DeviceId, service: SnapshotsDep) -> Response:
    if not service.knows(device_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown device {device_id!r}")
    service.reset_reference(device_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
