"""Image metrics of one frame (pure: numpy/OpenCV on arrays, no I/O, no clock).

Every metric is measured on a grey image normalised to ANALYSIS_LONG_SIDE pixels on its
long side, whatever the camera's resolution and the libjpeg reduction used to decode it,
so one set of thresholds fits 720p, 1080p and 4K cameras alike (the sharpness
"calibration for the reduction factor" is this normalisation; see docs/snapshots.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

ANALYSIS_LONG_SIDE: Final = 480
SIGNATURE_SIZE: Final = (128, 72)  # (w, h) grey thumbnail kept per camera for frozen/moved
COARSE_SIZE: Final = (32, 18)  # layout grid for the comparison with the reference
DETAIL_SIZE: Final = (64, 36)  # detail grid (low frequencies removed) for the same
DETAIL_SIGMA: Final = 3.0
UNIFORM_BLOCK: Final = 16  # px at the analysis scale
UNIFORM_BLOCK_STD: Final = 3.0  # a block whose grey std is below this is "uniform"

Image = npt.NDArray[np.uint8]
Signature = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class FrameMetrics:
    brightness: float  # mean grey level 0–255
    contrast: float  # std of grey levels
    sharpness: float  # variance of the Laplacian at the analysis scale
    colourfulness: float  # Hasler–Süsstrunk M3; ≈0 for IR night mode
    uniform_fraction: float  # share of 16×16 blocks without texture (lens covered)
    signature: Signature  # SIGNATURE_SIZE grey, float32

    def fields(self) -> dict[str, float]:
        return {
            "brightness": round(self.brightness, 2),
            "contrast": round(self.contrast, 2),
            "sharpness": round(self.sharpness, 2),
            "colourfulness": round(self.colourfulness, 2),
            "uniform_fraction": round(self.uniform_fraction, 4),
        }


def normalise(img: Image) -> Image:
    """Resize (INTER_AREA) so the long side is ANALYSIS_LONG_SIDE; smaller images stay as they are."""
    h, w = img.shape[:2]
    long_side = max(h, w)
    if long_side <= ANALYSIS_LONG_SIDE:
        return img
    scale = ANALYSIS_LONG_SIDE / long_side
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(cv2.resize(img, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def measure(img: Image) -> FrameMetrics:
    """All metrics of one decoded frame (BGR or grey, any size)."""
    img = normalise(img)
    if img.ndim == 3:
        grey = np.asarray(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
        colourfulness = colourfulness_of(img)
    else:
        grey, colourfulness = img, 0.0
    mean, std = cv2.meanStdDev(grey)
    return FrameMetrics(
        brightness=float(mean[0, 0]),
        contrast=float(std[0, 0]),
        sharpness=sharpness_of(grey),
        colourfulness=colourfulness,
        uniform_fraction=uniform_fraction_of(grey),
        signature=signature_of(grey),
    )


def sharpness_of(grey: Image) -> float:
    """Variance of the Laplacian (focus measure) after a 3×3 median: the median removes pixel
    noise (strong in IR night pictures), which would otherwise pass for detail, and keeps
    edges. Falls with blur, defocus, fog, condensation and darkness."""
    lap = cv2.Laplacian(cv2.medianBlur(grey, 3), cv2.CV_32F)
    _, std = cv2.meanStdDev(lap)
    return float(std[0, 0]) ** 2


def colourfulness_of(bgr: Image) -> float:
    """Hasler & Süsstrunk (2003) colourfulness M3: 0 for grey images, ~15 dull, >50 vivid.
    Measured at half the analysis scale: colour statistics need no fine detail."""
    h, w = bgr.shape[:2]
    small = cv2.resize(bgr, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)
    b, g, r = (c.astype(np.float32) for c in cv2.split(small))
    rg = r - g
    yb = 0.5 * (r + g) - b
    std = float(np.hypot(rg.std(), yb.std()))
    mean = float(np.hypot(rg.mean(), yb.mean()))
    return std + 0.3 * mean


def uniform_fraction_of(grey: Image) -> float:
    """Share of UNIFORM_BLOCK-sized blocks whose grey std is below UNIFORM_BLOCK_STD."""
    h, w = grey.shape
    bw, bh = max(1, w // UNIFORM_BLOCK), max(1, h // UNIFORM_BLOCK)
    g = grey[: bh * UNIFORM_BLOCK, : bw * UNIFORM_BLOCK].astype(np.float32)
    mean = cv2.resize(g, (bw, bh), interpolation=cv2.INTER_AREA)
    mean_sq = cv2.resize(g * g, (bw, bh), interpolation=cv2.INTER_AREA)
    var = np.maximum(mean_sq - mean * mean, 0.0)
    return float(np.count_nonzero(var < UNIFORM_BLOCK_STD**2)) / float(var.size)


def signature_of(grey: Image) -> Signature:
    return np.asarray(cv2.resize(grey, SIGNATURE_SIZE, interpolation=cv2.INTER_AREA), dtype=np.float32)


def frame_difference(a: Signature, b: Signature) -> float:
    """Mean absolute grey difference of two signatures (0 for the same frame re-sent)."""
    return float(np.mean(np.abs(a - b)))


def structural_change(current: Signature, reference: Signature) -> float:
    """How far the view departs from the reference: ~0 same view, ≳0.4 turned or obstructed.

    The larger of two `1 − normalised cross-correlation` scores: one on the coarse layout
    (catches a large obstruction), one on the detail (edges, after removing the low
    frequencies: catches a pan or tilt that keeps the horizon). Both are insensitive to a
    global change of exposure (gain and offset), so dusk and dawn do not move a camera.
    """
    coarse = _ncc_distance(_coarse(current), _coarse(reference))
    detail = _ncc_distance(_detail(current), _detail(reference))
    return max(coarse, detail)


def _coarse(sig: Signature) -> npt.NDArray[np.float32]:
    return np.asarray(cv2.resize(sig, COARSE_SIZE, interpolation=cv2.INTER_AREA), dtype=np.float32)


def _detail(sig: Signature) -> npt.NDArray[np.float32]:
    s = cv2.resize(sig, DETAIL_SIZE, interpolation=cv2.INTER_AREA)
    return np.asarray(s - cv2.GaussianBlur(s, (0, 0), DETAIL_SIGMA), dtype=np.float32)


def _ncc_distance(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    a = (a - float(a.mean())).ravel()
    b = (b - float(b.mean())).ravel()
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na < 1e-3 or nb < 1e-3:  # a flat image on either side: nothing to compare
        return 0.0 if na < 1e-3 and nb < 1e-3 else 1.0
    return max(0.0, 1.0 - float(np.dot(a, b)) / (na * nb))
