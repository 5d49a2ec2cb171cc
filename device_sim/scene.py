"""Synthetic camera pictures: a village street or courtyard rendered with OpenCV.

Cheap enough for hundreds of cameras: the static background is drawn once per
(variant, resolution) and shared; each frame copies it, composites a few moving
people and vehicles, applies daylight (grey infrared at night), sensor noise and
a timestamp overlay, then encodes a JPEG. Faults (dark, blurred, lens covered,
frozen, moved) are applied here so the image shows what the fault claims.
"""

from __future__ import annotations

import math
import threading
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[Any]  # uint8 BGR, H×W×3

VARIANTS: Final = 12
NOISE_PAD: Final = 16
LOCAL_UTC_OFFSET_H: Final = 8.0  # Asia/Shanghai, for the overlay and daylight
_bg_cache: dict[tuple[int, int, int], Image] = {}
_noise_cache: dict[tuple[int, int], tuple[Image, Image]] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Effects:
    """Camera faults as the picture shows them."""

    dark: bool = False
    blurred: bool = False
    covered: bool = False
    frozen: bool = False
    moved_px: int = 0  # scene shifted by this many pixels (and rotated a little)


def stable_seed(text: str) -> int:
    return zlib.crc32(text.encode())


def daylight(scene_ts: float, utc_offset_h: float = LOCAL_UTC_OFFSET_H) -> float:
    """0 at night … 1 at noon, local solar time; smooth dawn 05–07 and dusk 17–19."""
    hour = (scene_ts / 3600.0 + utc_offset_h) % 24.0
    if hour < 5 or hour >= 19:
        return 0.0
    if hour < 7:
        return (hour - 5) / 2
    if hour >= 17:
        return (19 - hour) / 2
    return 1.0


def _background(variant: int, width: int, height: int) -> Image:
    key = (variant, width, height)
    with _cache_lock:
        bg = _bg_cache.get(key)
        if bg is None:
            bg = _draw_background(variant, width, height)
            bg.setflags(write=False)
            _bg_cache[key] = bg
    return bg


def _noise(width: int, height: int) -> tuple[Image, Image]:
    key = (width, height)
    with _cache_lock:
        pair = _noise_cache.get(key)
        if pair is None:
            rng = np.random.default_rng(7)
            n = rng.normal(0, 3.0, (height + NOISE_PAD, width + NOISE_PAD, 1))
            n = np.repeat(n, 3, axis=2)
            pair = (np.clip(n, 0, 255).astype(np.uint8), np.clip(-n, 0, 255).astype(np.uint8))
            _noise_cache[key] = pair
    return pair


def _draw_background(variant: int, w: int, h: int) -> Image:
    rng = np.random.default_rng(variant)
    img = np.zeros((h, w, 3), np.uint8)
    horizon = int(h * rng.uniform(0.38, 0.5))
    # sky: vertical gradient
    top, bottom = np.array([235, 200, 150], float), np.array([250, 235, 215], float)
    t = np.linspace(0, 1, horizon)[:, None]
    img[:horizon] = (top * (1 - t) + bottom * t)[:, None, :].astype(np.uint8)
    # distant hills
    xs = np.arange(w)
    hill = horizon - (h * 0.08 * (1 + np.sin(xs / w * rng.uniform(4, 9) + rng.uniform(0, 6))) / 2)
    pts = np.vstack([np.column_stack([xs, hill.astype(int)]), [[w - 1, horizon], [0, horizon]]])
    cv2.fillPoly(img, [pts.astype(np.int32)], (95, 135, 100))
    courtyard = variant % 3 == 2
    ground = (120, 150, 160) if courtyard else (70, 120, 90)
    img[horizon:] = ground
    if courtyard:  # paved courtyard with tile lines and a wall
        for y in range(horizon, h, max(8, h // 24)):
            cv2.line(img, (0, y), (w, y), (105, 130, 140), max(1, h // 360))
        cv2.rectangle(img, (0, horizon - h // 8), (w, horizon), (170, 180, 190), -1)
    else:  # a concrete road across the picture
        road_top, road_bot = int(h * 0.68), int(h * 0.88)
        cv2.rectangle(img, (0, road_top), (w, road_bot), (105, 105, 110), -1)
        for x in range(0, w, w // 10):
            cv2.line(img, (x, (road_top + road_bot) // 2), (x + w // 25, (road_top + road_bot) // 2),
                     (220, 220, 220), max(1, h // 180))
    # houses: white walls, grey tiled roofs, dark windows and doors
    n_houses = int(rng.integers(3, 6))
    for i in range(n_houses):
        hw = int(w * rng.uniform(0.12, 0.2))
        hx = int(i * w / n_houses + rng.uniform(0, w / n_houses - hw))
        hh = int(h * rng.uniform(0.16, 0.26))
        hy = horizon + int(h * 0.08) - hh
        wall = tuple(int(c) for c in rng.integers(190, 240, 3))
        cv2.rectangle(img, (hx, hy), (hx + hw, hy + hh), wall, -1)
        roof = np.array([[hx - hw // 10, hy], [hx + hw + hw // 10, hy], [hx + hw // 2, hy - hh // 2]])
        cv2.fillPoly(img, [roof.astype(np.int32)], (70, 70, 80))
        for k in range(2):
            wx = hx + hw // 6 + k * hw // 2
            cv2.rectangle(img, (wx, hy + hh // 4), (wx + hw // 6, hy + hh // 2), (60, 50, 40), -1)
        cv2.rectangle(img, (hx + hw // 2 - hw // 12, hy + hh // 2), (hx + hw // 2 + hw // 12, hy + hh),
                      (40, 60, 110), -1)
    # trees and a utility pole
    for _ in range(int(rng.integers(3, 7))):
        tx, ty = int(rng.uniform(0, w)), horizon + int(h * rng.uniform(0.02, 0.12))
        cv2.rectangle(img, (tx - w // 200, ty), (tx + w // 200, ty + h // 10), (40, 60, 90), -1)
        cv2.circle(img, (tx, ty), int(h * rng.uniform(0.04, 0.08)), (40, int(rng.uniform(100, 140)), 50), -1)
    px = int(w * rng.uniform(0.1, 0.9))
    cv2.line(img, (px, int(h * 0.1)), (px, int(h * 0.75)), (50, 50, 50), max(2, w // 250))
    cv2.line(img, (0, int(h * 0.14)), (w, int(h * 0.12)), (30, 30, 30), 1)
    return img


def _shifted(bg: Image, px: int) -> Image:
    h, w = bg.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), px / 10.0, 1.0)
    m[0, 2] += px
    m[1, 2] += px / 2
    return cv2.warpAffine(bg, m, (w, h), borderMode=cv2.BORDER_REFLECT)


class SceneRenderer:
    """One camera's view. Not thread-safe per instance; many instances may render in parallel."""

    def __init__(self, camera_id: str, width: int = 1280, height: int = 720,
                 jpeg_quality: int = 80) -> None:
        self.camera_id = camera_id
        self.width, self.height = width, height
        self.jpeg_quality = jpeg_quality
        seed = stable_seed(camera_id)
        self.variant = seed % VARIANTS
        self._rng = np.random.default_rng(seed)
        self._movers = [
            (bool(self._rng.random() < 0.3), float(self._rng.uniform(0.02, 0.12)),
             float(self._rng.uniform(0, 1)), float(self._rng.uniform(0.7, 0.9)),
             tuple(int(c) for c in self._rng.integers(20, 230, 3)))
            for _ in range(int(self._rng.integers(2, 6)))
        ]
        self._moved: tuple[int, Image] | None = None
        self._last: bytes | None = None
        self.motion = False  # a mover is in the picture (drives `motion` events)

    def render(self, scene_ts: float, effects: Effects = Effects()) -> Image:
        w, h = self.width, self.height
        bg = _background(self.variant, w, h)
        if effects.moved_px:
            if self._moved is None or self._moved[0] != effects.moved_px:
                self._moved = (effects.moved_px, _shifted(bg, effects.moved_px))
            bg = self._moved[1]
        img = bg.copy()
        self.motion = False
        for is_car, speed, phase, y_frac, colour in self._movers:
            # position cycles over ~1 / speed minutes of scene time
            x_frac = (scene_ts / 60.0 * speed + phase) % 1.4 - 0.2
            if not -0.1 < x_frac < 1.05:
                continue
            self.motion = True
            x, y = int(x_frac * w), int(y_frac * h)
            s = h / 720
            if is_car:
                cv2.rectangle(img, (x, y - int(60 * s)), (x + int(170 * s), y), colour, -1)
                cv2.rectangle(img, (x + int(30 * s), y - int(95 * s)), (x + int(130 * s), y - int(60 * s)),
                              colour, -1)
                for wx in (x + int(35 * s), x + int(135 * s)):
                    cv2.circle(img, (wx, y), int(18 * s), (20, 20, 20), -1)
            else:
                cv2.ellipse(img, (x, y - int(45 * s)), (int(14 * s), int(38 * s)), 0, 0, 360, colour, -1)
                cv2.circle(img, (x, y - int(92 * s)), int(11 * s), (150, 180, 210), -1)
        light = daylight(scene_ts)
        if effects.covered:
            img[:] = (38, 36, 34)
        elif effects.dark:
            img = cv2.convertScaleAbs(img, alpha=0.03)
        elif light < 0.25:  # infrared: grey picture, flat and a little washed out
            grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
            grey = cv2.convertScaleAbs(grey, alpha=0.55, beta=25)
            img = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
        else:
            img = cv2.convertScaleAbs(img, alpha=0.35 + 0.65 * light)
        if effects.blurred:
            small = cv2.resize(img, (max(1, w // 24), max(1, h // 24)), interpolation=cv2.INTER_AREA)
            img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        pos, neg = _noise(w, h)
        dx, dy = (int(v) for v in self._rng.integers(0, NOISE_PAD, 2))
        img = cv2.subtract(cv2.add(img, pos[dy:dy + h, dx:dx + w]), neg[dy:dy + h, dx:dx + w])
        self._overlay(img, scene_ts)
        return img

    def _overlay(self, img: Image, scene_ts: float) -> None:
        local = datetime.fromtimestamp(scene_ts, UTC) + timedelta(hours=LOCAL_UTC_OFFSET_H)
        text = f"{local:%Y-%m-%d %H:%M:%S}  {self.camera_id}"
        scale = self.height / 720 * 0.8
        org = (int(12 * scale / 0.8), int(30 * scale / 0.8))
        thick = max(1, math.ceil(2 * scale))
        cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
        cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)

    def encode(self, img: Image) -> bytes:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        return buf.tobytes()

    def snapshot(self, scene_ts: float, effects: Effects = Effects()) -> bytes:
        """A JPEG of the scene now; a frozen camera repeats its last picture byte for byte."""
        if effects.frozen and self._last is not None:
            return self._last
        self._last = self.encode(self.render(scene_ts, effects))
        return self._last
