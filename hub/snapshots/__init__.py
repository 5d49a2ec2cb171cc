"""Camera snapshots (PROTOCOL §4): header checks, safe decode, image health, storage, service.

Importing this package caps OpenCV's image allocation *before* cv2 is first imported:
OpenCV reads `OPENCV_IO_MAX_IMAGE_PIXELS` once and allocates the full image before it
decodes a single byte. Our own SOF check (hub.snapshots.jpeg) is the first line of
defence; this cap is the second.
"""

from __future__ import annotations

import os

DEFAULT_MAX_PIXELS = 40_000_000

os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(DEFAULT_MAX_PIXELS))
