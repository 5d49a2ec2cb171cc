"""The work done for one snapshot in the worker pool: reduced decode, metrics, thumbnail.

`analyse_jpeg` is a top-level pure function over bytes, so it runs the same in a thread
or in a process (the service measures and picks; see docs/snapshots.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np

from hub.snapshots.analysis import ANALYSIS_LONG_SIDE, FrameMetrics, measure
from hub.snapshots.jpeg import JpegInfo, Reject, decode_reduced, reduction_for

THUMBNAIL_LONG_SIDE: Final = 320
THUMBNAIL_QUALITY: Final = 75


@dataclass(frozen=True, slots=True)
class Analysed:
    metrics: FrameMetrics
    factor: int  # libjpeg reduction used for the decode
    thumbnail: bytes  # JPEG, THUMBNAIL_LONG_SIDE on its long side


def analyse_jpeg(data: bytes, info: JpegInfo, thumbnail_long_side: int = THUMBNAIL_LONG_SIDE) -> Analysed | Reject:
    """Decode at the smallest scale the analysis needs, then measure and make the thumbnail."""
    factor = reduction_for(info, ANALYSIS_LONG_SIDE)
    img = decode_reduced(data, factor)
    if img is None:
        return Reject.UNDECODABLE
    if grey_filled(img):
        return Reject.TRUNCATED
    return Analysed(measure(img), factor, make_thumbnail(img, thumbnail_long_side))


def grey_filled(img: np.ndarray) -> bool:
    """libjpeg fills the part of a truncated scan it never got with exact mid-grey (128) and
    reports success; an end marker glued onto half a file passes the marker checks, so look
    at the bottom rows: no camera image is exactly 128 in every pixel of a whole band."""
    band = img[-max(1, img.shape[0] // 32) :]
    return bool(np.all(band == 128))


def make_thumbnail(img: np.ndarray, long_side: int = THUMBNAIL_LONG_SIDE) -> bytes:
    h, w = img.shape[:2]
    scale = min(1.0, long_side / max(h, w))
    if scale < 1.0:
        img = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, THUMBNAIL_QUALITY])
    return bytes(buf.tobytes()) if ok else b""


def single_threaded_opencv() -> None:
    """One OpenCV thread per worker: the pool already uses every core, and OpenCV's own
    threads only add hand-offs on images this small."""
    cv2.setNumThreads(1)
