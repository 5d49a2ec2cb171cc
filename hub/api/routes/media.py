"""Broadcast audio: upload (size and type checked), hub-side TTS, and the files speakers fetch.

`GET /media/{sha256}` needs no token: speakers fetch by content hash (PROTOCOL §6 `audio`
media carries url and sha256), and a hash names only a file someone uploaded on purpose.
"""

from __future__ import annotations

from fastapi import APIRouter, File, HTTPException, UploadFile, status
from fastapi.responses import FileResponse

from hub.api.deps import MediaDep, Operator
from hub.api.errors import unprocessable
from hub.api.schemas.broadcasts import MediaOut, TtsIn
from hub.broadcasts.media import MediaError, MediaInfo, MediaStore
from hub.messages import Rejection
from hub.rejections import REJECTIONS

_STATUS = {"too_large": status.HTTP_413_CONTENT_TOO_LARGE,
           "unsupported_type": status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
           "tts_unavailable": status.HTTP_501_NOT_IMPLEMENTED}


def _out(store: MediaStore, info: MediaInfo) -> MediaOut:
    return MediaOut(sha256=info.sha256, content_type=info.content_type, bytes=info.bytes,
                    duration_s=info.duration_s, media=info.as_media(store.base_url))


def _refuse(exc: MediaError, who: str) -> Exception:
    REJECTIONS.reject(Rejection("api", f"media_{exc.reason}", who, str(exc)))
    code = _STATUS.get(exc.reason, status.HTTP_422_UNPROCESSABLE_CONTENT)
    if code == status.HTTP_422_UNPROCESSABLE_CONTENT:
        return unprocessable(["body", *exc.field.split(".")], str(exc))
    return HTTPException(code, f"{exc.field}: {exc}")


router = APIRouter(tags=["media"])


@router.post("/api/v1/media", status_code=201, response_model=MediaOut,
             summary="Upload an audio file for broadcasts (MP3, WAV, Ogg, FLAC, MP4/AAC)",
             responses={413: {"description": "larger than the upload limit"},
                        415: {"description": "not a recognised audio file"}})
def upload(who: Operator, store: MediaDep, file: UploadFile = File(...)) -> MediaOut:
    data = file.file.read(store.max_bytes + 1)
    try:
        info = store.add(data, file.filename or "")
    except MediaError as exc:
        raise _refuse(exc, who.name) from None
    return _out(store, info)


@router.post("/api/v1/media/tts", status_code=201, response_model=MediaOut,
             summary="Synthesise speech on the hub (espeak-ng) for speakers that cannot",
             responses={501: {"description": "espeak-ng is not installed on the hub"}})
def tts(body: TtsIn, who: Operator, store: MediaDep) -> MediaOut:
    try:
        return _out(store, store.tts(body.text, body.lang))
    except MediaError as exc:
        raise _refuse(exc, who.name) from None


@router.get("/media/{sha256}", summary="An uploaded audio file, by its sha256",
            response_class=FileResponse, responses={404: {"description": "no such file"}})
def get_media(sha256: str, store: MediaDep) -> FileResponse:
    info = store.get(sha256)
    path = store.path(sha256)
    if info is None or path is None:
        raise HTTPException(404, f"no media {sha256[:80]}")
    return FileResponse(path, media_type=info.content_type,
                        headers={"Cache-Control": "public, max-age=31536000, immutable",
                                 "ETag": f'"{sha256}"'})
