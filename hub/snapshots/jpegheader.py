"""JPEG header checks before any decode (PROTOCOL §4); pure, no OpenCV.

`inspect_jpeg` is cheap (it reads the marker segments up to the frame header and the last
bytes): size cap, magic `FF D8 FF`, the SOFn frame header (width × height ≤ the pixel
limit) and the end-of-image marker `FF D9`. Only a payload that passes it is handed to
OpenCV (hub.snapshots.jpeg), so a decompression bomb or a PNG/TIFF/GIF never reaches a
decoder. The problem ledger checks uploads with it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

SOI: Final = b"\xff\xd8\xff"
EOI: Final = b"\xff\xd9"
# SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
SOF_MARKERS: Final = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
STANDALONE_MARKERS: Final = frozenset({0x01, *range(0xD0, 0xD8)})
MAX_TRAILING_PADDING: Final = 64 * 1024  # zero bytes some cameras append after EOI
MAX_SEGMENTS: Final = 4096  # bounds the header walk of a hostile file


class Reject(StrEnum):
    """Why a snapshot payload was refused: the `reason` label of the rejection metrics."""

    EMPTY = "empty"
    TOO_LARGE = "too_large"
    NOT_JPEG = "not_jpeg"
    BAD_HEADER = "bad_header"
    NO_FRAME_HEADER = "no_frame_header"
    TOO_MANY_PIXELS = "too_many_pixels"
    TRUNCATED = "truncated"
    UNDECODABLE = "undecodable"


@dataclass(frozen=True, slots=True)
class JpegInfo:
    width: int
    height: int
    components: int
    sof: int  # the SOFn marker byte: C0 baseline, C2 progressive, …
    size: int  # payload bytes

    @property
    def progressive(self) -> bool:
        return self.sof in (0xC2, 0xC6, 0xCA, 0xCE)


@dataclass(frozen=True, slots=True)
class JpegRejected:
    reason: Reject
    detail: str = ""


def inspect_jpeg(data: bytes, *, max_bytes: int, max_pixels: int) -> JpegInfo | JpegRejected:
    """Validate a payload as a JPEG without decoding it."""
    size = len(data)
    if size == 0:
        return JpegRejected(Reject.EMPTY, "0 bytes")
    if size > max_bytes:
        return JpegRejected(Reject.TOO_LARGE, f"{size} bytes > {max_bytes}")
    if not data.startswith(SOI):
        return JpegRejected(Reject.NOT_JPEG, f"starts with {data[:4].hex()}")
    header = _frame_header(data)
    if isinstance(header, JpegRejected):
        return header
    width, height, components, sof = header
    if width * height > max_pixels:
        return JpegRejected(Reject.TOO_MANY_PIXELS, f"{width}x{height} > {max_pixels} pixels")
    if not _ends_with_eoi(data):
        return JpegRejected(Reject.TRUNCATED, f"no end-of-image marker (ends {data[-4:].hex()})")
    return JpegInfo(width, height, components, sof, size)


def _frame_header(data: bytes) -> tuple[int, int, int, int] | JpegRejected:
    """Walk the marker segments after SOI up to the first SOFn; return (w, h, components, marker)."""
    pos, size = 2, len(data)
    for _ in range(MAX_SEGMENTS):
        if pos + 1 >= size:
            return JpegRejected(Reject.TRUNCATED, "ends inside the header segments")
        if data[pos] != 0xFF:
            return JpegRejected(Reject.BAD_HEADER, f"expected a marker at offset {pos}")
        while pos < size and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= size:
            return JpegRejected(Reject.TRUNCATED, "ends inside a marker")
        marker = data[pos]
        pos += 1
        if marker in STANDALONE_MARKERS:
            continue
        if marker in (0xD8, 0xD9, 0xDA, 0x00):  # SOI again, EOI or scan before any frame header
            return JpegRejected(Reject.NO_FRAME_HEADER, f"marker {marker:02X} before a frame header")
        if pos + 2 > size:
            return JpegRejected(Reject.TRUNCATED, "ends inside a segment length")
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 2 or pos + length > size:
            return JpegRejected(Reject.BAD_HEADER, f"segment {marker:02X} length {length} out of bounds")
        if marker in SOF_MARKERS:
            if length < 8:
                return JpegRejected(Reject.BAD_HEADER, "frame header too short")
            height = int.from_bytes(data[pos + 3 : pos + 5], "big")
            width = int.from_bytes(data[pos + 5 : pos + 7], "big")
            components = data[pos + 7]
            if width == 0 or height == 0:
                return JpegRejected(Reject.BAD_HEADER, f"frame header {width}x{height}")
            if components not in (1, 3, 4) or length != 8 + 3 * components:
                return JpegRejected(Reject.BAD_HEADER, f"frame header with {components} components")
            return width, height, components, marker
        pos += length
    return JpegRejected(Reject.BAD_HEADER, f"more than {MAX_SEGMENTS} segments before the frame header")


def _ends_with_eoi(data: bytes) -> bool:
    """`FF D9` at the end, after at most MAX_TRAILING_PADDING zero bytes of padding."""
    tail = data[-(MAX_TRAILING_PADDING + 2) :].rstrip(b"\x00")
    return len(tail) >= 2 and tail.endswith(EOI) and len(data) >= 4
