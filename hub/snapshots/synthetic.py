"""Synthetic camera frames for tests and benchmarks: a textured village scene and its faults.

Rendered with numpy/OpenCV only (no image files in the repository), deterministic per seed.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

import cv2
import numpy as np
import numpy.typing as npt

Scene = Literal["ok", "dark", "blurred", "covered", "moved", "night"]
Image = npt.NDArray[np.uint8]


def render_scene(seed: int = 7, width: int = 1920, height: int = 1080) -> Image:
    """A colourful, textured outdoor view: sky gradient, ground, houses, poles, foliage."""
    return _render(seed, width, height).copy()


@cache
def _render(seed: int, width: int, height: int) -> Image:
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3), np.uint8)
    horizon = height * 2 // 5
    sky = np.linspace(235, 170, horizon, dtype=np.float32)[:, None]
    img[:horizon] = np.stack([sky.repeat(width, 1), (sky * 0.85).repeat(width, 1),
                              (sky * 0.6).repeat(width, 1)], -1).astype(np.uint8)
    img[horizon:] = (60, 120, 80)
    s = width / 1920
    for _ in range(40):  # houses, walls, vehicles
        x, y = int(rng.integers(0, width)), int(rng.integers(int(horizon - 80 * s), height))
        w, h = int(rng.integers(60, 300) * s), int(rng.integers(40, 200) * s)
        colour = tuple(int(c) for c in rng.integers(20, 235, 3))
        cv2.rectangle(img, (x, y), (x + w, y + h), colour, -1)
        cv2.rectangle(img, (x, y), (x + w, y + h), (20, 20, 20), max(1, int(3 * s)))
    for _ in range(25):  # trees
        c = (int(rng.integers(0, width)), int(rng.integers(int(horizon - 100 * s), height)))
        cv2.circle(img, c, int(rng.integers(20, 90) * s), (30, int(rng.integers(90, 180)), 40), -1)
    for _ in range(30):  # poles and wires
        p1 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        p2 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.line(img, p1, p2, (40, 40, 40), max(1, int(2 * s)), cv2.LINE_AA)
    texture: Any = rng.normal(0, 14, (height // 2, width // 2, 1)).astype(np.float32)
    texture = cv2.resize(texture, (width, height), interpolation=cv2.INTER_LINEAR)[..., None]
    out = np.clip(img.astype(np.float32) + texture, 0, 255).astype(np.uint8)
    cv2.putText(out, f"CAM {seed:03d}", (int(40 * s), int(80 * s)), cv2.FONT_HERSHEY_SIMPLEX,
                2 * s, (255, 255, 255), max(1, int(4 * s)), cv2.LINE_AA)
    return np.asarray(out, dtype=np.uint8)


def fault(base: Image, scene: Scene, *, frame: int = 0, moved_base: Image | None = None) -> Image:
    """`base` as the camera would see it in `scene`, with this frame's own sensor noise."""
    rng = np.random.default_rng(1000 + frame)
    img: Any = base.astype(np.float32)
    if scene == "dark":
        img *= 0.06
    elif scene == "blurred":
        h, w = base.shape[:2]  # a defocused lens: blur at quarter size (same result, 16× cheaper)
        small = cv2.resize(img, (w // 4, h // 4), interpolation=cv2.INTER_AREA)
        img = cv2.resize(cv2.GaussianBlur(small, (0, 0), w / 480), (w, h), interpolation=cv2.INTER_LINEAR)
    elif scene == "covered":
        h = base.shape[0]
        img[:] = (95, 110, 150)  # a hand or a bag over the lens: even, textureless
        img[: h // 12] = img[: h // 12] * 0.5 + base[: h // 12] * 0.5
        img = cv2.GaussianBlur(img, (0, 0), 2)
    elif scene == "moved":
        other = moved_base if moved_base is not None else render_scene(4242, base.shape[1], base.shape[0])
        img = other.astype(np.float32)
    elif scene == "night":
        grey = cv2.cvtColor(base, cv2.COLOR_BGR2GRAY).astype(np.float32) * 0.8 + 20
        img = np.repeat(grey[..., None], 3, axis=2)
    h, w = img.shape[:2]
    shift = int(rng.integers(0, h * w))
    noise = np.roll(_noise_bank(h, w), shift).reshape(h, w, 1)  # this frame's own sensor noise
    return np.asarray(np.clip(img + noise, 0, 255), dtype=np.uint8)


@cache
def _noise_bank(h: int, w: int) -> npt.NDArray[np.float32]:
    return np.random.default_rng(99).normal(0, 3.0, h * w).astype(np.float32)


def encode(img: Image, quality: int = 85) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return bytes(buf.tobytes())


def scene_jpeg(scene: Scene, *, seed: int = 7, frame: int = 0, width: int = 1920, height: int = 1080) -> bytes:
    return encode(fault(render_scene(seed, width, height), scene, frame=frame))
