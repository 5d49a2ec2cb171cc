"""PROTOCOL §4: a payload is checked as a JPEG (size, magic, frame header, EOI) before any decode."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from hub.snapshots import jpeg as J
from hub.snapshots.synthetic import encode, render_scene, scene_jpeg

pytestmark = pytest.mark.unit

MAX_BYTES = 4 * 1024 * 1024
MAX_PIXELS = 40_000_000


def check(data: bytes) -> J.JpegInfo | J.JpegRejected:
    return J.inspect_jpeg(data, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS)


def bomb_header(width: int, height: int, sof: int = 0xC0) -> bytes:
    """A tiny JPEG whose frame header declares width × height (a decompression bomb)."""
    sof_seg = bytes([0xFF, sof]) + struct.pack(">HBHHB", 17, 8, height, width, 3) + bytes(
        [1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]
    )
    return b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + sof_seg + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + b"\x00" * 64 + b"\xff\xd9"


@pytest.fixture(scope="module")
def valid() -> bytes:
    return scene_jpeg("ok", width=640, height=360)


def test_valid_jpeg_reports_its_frame_size(valid: bytes) -> None:
    info = check(valid)
    assert isinstance(info, J.JpegInfo)
    assert (info.width, info.height, info.components) == (640, 360, 3)
    assert info.sof == 0xC0 and not info.progressive


def test_progressive_jpeg_frame_header_is_found() -> None:
    _, buf = cv2.imencode(".jpg", render_scene(1, 320, 240), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    info = check(buf.tobytes())
    assert isinstance(info, J.JpegInfo) and info.progressive and (info.width, info.height) == (320, 240)


def test_greyscale_jpeg_has_one_component() -> None:
    grey = cv2.cvtColor(render_scene(1, 320, 240), cv2.COLOR_BGR2GRAY)
    info = check(encode(np.asarray(grey, dtype=np.uint8)))
    assert isinstance(info, J.JpegInfo) and info.components == 1


def _png() -> bytes:
    raw = b"\x00\x00\x00\x00"
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


BAD_PAYLOADS = {
    "empty": (b"", J.Reject.EMPTY),
    "one_byte": (b"\xff", J.Reject.NOT_JPEG),
    "two_bytes_soi_only": (b"\xff\xd8", J.Reject.NOT_JPEG),
    "png": (_png(), J.Reject.NOT_JPEG),
    "tiff": (b"II*\x00\x08\x00\x00\x00" + b"\x00" * 64, J.Reject.NOT_JPEG),
    "gif": (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", J.Reject.NOT_JPEG),
    "text_ffd8": (b"FFD8FFE0 this is text, not a jpeg", J.Reject.NOT_JPEG),
    "random": (np.random.default_rng(3).integers(0, 256, 5000, dtype=np.uint8).tobytes(), J.Reject.NOT_JPEG),
    "bomb_65500": (bomb_header(65500, 65500), J.Reject.TOO_MANY_PIXELS),
    "bomb_30000": (bomb_header(30000, 30000), J.Reject.TOO_MANY_PIXELS),
    "bomb_progressive": (bomb_header(20000, 20000, 0xC2), J.Reject.TOO_MANY_PIXELS),
    "zero_width": (bomb_header(0, 100), J.Reject.BAD_HEADER),
    "soi_then_eoi": (b"\xff\xd8\xff\xd9", J.Reject.NO_FRAME_HEADER),
    "segment_past_end": (b"\xff\xd8\xff\xe0\x40\x00abc", J.Reject.BAD_HEADER),
    "garbage_after_soi": (b"\xff\xd8\xff\xe0\x00\x04ab" + b"xyz" * 10, J.Reject.BAD_HEADER),
}


@pytest.mark.parametrize("name", sorted(BAD_PAYLOADS))
def test_bad_payload_is_rejected_with_its_reason(name: str) -> None:
    data, reason = BAD_PAYLOADS[name]
    result = check(data)
    assert isinstance(result, J.JpegRejected), result
    assert result.reason == reason, result


def test_payload_over_the_size_cap_is_rejected_before_looking_inside() -> None:
    result = check(b"\xff\xd8\xff" + b"\x00" * (20 * 1024 * 1024))
    assert isinstance(result, J.JpegRejected) and result.reason == J.Reject.TOO_LARGE


def test_pixel_limit_is_configurable(valid: bytes) -> None:
    result = J.inspect_jpeg(valid, max_bytes=MAX_BYTES, max_pixels=640 * 360 - 1)
    assert isinstance(result, J.JpegRejected) and result.reason == J.Reject.TOO_MANY_PIXELS


def test_truncated_jpeg_without_end_marker_is_rejected(valid: bytes) -> None:
    result = check(valid[: len(valid) // 2])
    assert isinstance(result, J.JpegRejected) and result.reason == J.Reject.TRUNCATED


def test_truncated_inside_the_header_is_rejected(valid: bytes) -> None:
    result = check(valid[:40])
    assert isinstance(result, J.JpegRejected) and result.reason in (J.Reject.TRUNCATED, J.Reject.BAD_HEADER)


def test_trailing_zero_padding_after_end_marker_is_tolerated(valid: bytes) -> None:
    assert isinstance(check(valid + b"\x00" * 4096), J.JpegInfo)


def test_trailing_garbage_after_end_marker_is_rejected(valid: bytes) -> None:
    result = check(valid + b"\x12\x34")
    assert isinstance(result, J.JpegRejected) and result.reason == J.Reject.TRUNCATED


@pytest.mark.parametrize(("size", "factor"), [((640, 360), 1), ((1280, 720), 2), ((1920, 1080), 4), ((3840, 2160), 8), ((8000, 6000), 8)])
def test_reduction_keeps_the_long_side_at_or_above_the_analysis_size(size: tuple[int, int], factor: int) -> None:
    info = J.JpegInfo(size[0], size[1], 3, 0xC0, 1000)
    assert J.reduction_for(info, 480) == factor


def test_reduced_decode_has_the_reduced_size() -> None:
    data = scene_jpeg("ok", width=1920, height=1080)
    img = J.decode_reduced(data, 4)
    assert img is not None and img.shape == (270, 480, 3)
    grey = J.decode_reduced(data, 8, colour=False)
    assert grey is not None and grey.shape == (135, 240)


def test_opencv_pixel_cap_is_set_before_cv2_is_used() -> None:
    import os

    assert int(os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"]) <= MAX_PIXELS


def test_truncated_decode_never_shows_the_previous_image() -> None:
    """opencv/opencv#26488 (4.10, 4.11): a truncated JPEG decoded after another one was
    filled with the earlier image's pixels. Decode A, then truncated B, several times:
    B's missing part must not be A."""
    a_img = render_scene(1, 640, 480)
    b_img = np.full_like(a_img, 30)  # B: a flat dark frame, nothing like A
    cv2.rectangle(b_img, (0, 0), (639, 100), (200, 200, 200), -1)
    a, b = encode(a_img), encode(b_img)
    truncated_b = b[: len(b) // 3] + J.EOI  # passes the marker checks on purpose
    for _ in range(5):
        dec_a = J.decode_reduced(a, 1)
        dec_b = J.decode_reduced(truncated_b, 1)
        assert dec_a is not None
        if dec_b is None:
            continue
        bottom = dec_b[300:].astype(np.int16)
        leaked = np.abs(bottom - dec_a[300:].astype(np.int16)).mean()
        assert leaked > 20, f"truncated B shows A's pixels (mean diff {leaked:.1f}); OpenCV {cv2.__version__}"
        assert float(bottom.std()) < 5, "the missing part should be a flat fill"
