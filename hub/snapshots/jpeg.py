"""JPEG checks before any decode (PROTOCOL §4), and the reduced decode for analysis.

The header checks (`inspect_jpeg`, `JpegInfo`, `JpegRejected`, `Reject`) live in
hub.snapshots.jpegheader (no OpenCV) and are re-exported here; only a payload that passes
them is handed to OpenCV, so a decompression bomb or a PNG/TIFF/GIF never reaches a decoder.
"""

from __future__ import annotations

# hub/snapshots/__init__.py (always imported first) has set OPENCV_IO_MAX_IMAGE_PIXELS.
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from hub.snapshots.jpegheader import (
    EOI,
    MAX_SEGMENTS,
    MAX_TRAILING_PADDING,
    SOF_MARKERS,
    SOI,
    STANDALONE_MARKERS,
    JpegInfo,
    JpegRejected,
    Reject,
    inspect_jpeg,
)

__all__ = ["EOI", "MAX_SEGMENTS", "MAX_TRAILING_PADDING", "SOF_MARKERS", "SOI", "STANDALONE_MARKERS",
           "JpegInfo", "JpegRejected", "Reject", "decode_reduced", "inspect_jpeg", "reduction_for"]

# --- decode ------------------------------------------------------------------------------

_REDUCED_COLOUR: Final = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2,
                          4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
_REDUCED_GREY: Final = {1: cv2.IMREAD_GRAYSCALE, 2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
                        4: cv2.IMREAD_REDUCED_GRAYSCALE_4, 8: cv2.IMREAD_REDUCED_GRAYSCALE_8}


def reduction_for(info: JpegInfo, target_long_side: int) -> int:
    """The largest libjpeg DCT scaling (1, 2, 4, 8) that keeps the long side ≥ target."""
    long_side = max(info.width, info.height)
    factor = 1
    while factor < 8 and long_side // (factor * 2) >= target_long_side:
        factor *= 2
    return factor


def decode_reduced(
    data: bytes, factor: int, *, colour: bool = True
) -> npt.NDArray[np.uint8] | None:
    """Decode at 1/factor scale (libjpeg skips the DCT work); None when OpenCV cannot decode."""
    flags = (_REDUCED_COLOUR if colour else _REDUCED_GREY)[factor]
    img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if img is None or img.size == 0:
        return None
    return np.asarray(img, dtype=np.uint8)
