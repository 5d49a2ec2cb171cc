"""Image metrics and the per-camera health classification, on synthetic frames."""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np
import pytest

from hub.snapshots import analysis as A
from hub.snapshots.health import CameraHealth, Condition, Thresholds, detect
from hub.snapshots.jpeg import JpegInfo, inspect_jpeg
from hub.snapshots.pipeline import Analysed, analyse_jpeg
from hub.snapshots.synthetic import Scene, encode, fault, render_scene

pytestmark = pytest.mark.unit

T = Thresholds()


@cache
def base(w: int = 1920, h: int = 1080) -> np.ndarray:
    return render_scene(7, w, h)


@cache
def frame(scene: Scene, n: int = 0, w: int = 1920, h: int = 1080) -> A.FrameMetrics:
    data = encode(fault(base(w, h), scene, frame=n))
    info = inspect_jpeg(data, max_bytes=1 << 24, max_pixels=40_000_000)
    assert isinstance(info, JpegInfo)
    analysed = analyse_jpeg(data, info)
    assert isinstance(analysed, Analysed)
    return analysed.metrics


# --- metrics -------------------------------------------------------------------------------

def test_dark_frame_has_low_brightness() -> None:
    assert frame("dark").brightness < T.dark_brightness < frame("ok").brightness


def test_blurred_frame_has_low_sharpness() -> None:
    assert frame("blurred").sharpness < T.blurred_sharpness < frame("ok").sharpness


def test_sharpness_is_calibrated_across_resolutions() -> None:
    """Same view at 720p, 1080p and 4K (decoded with reductions 2, 4, 8): same verdict."""
    for w, h in ((1280, 720), (1920, 1080), (3840, 2160)):
        assert frame("ok", 0, w, h).sharpness > 4 * T.blurred_sharpness
        assert frame("blurred", 0, w, h).sharpness < T.blurred_sharpness
    values = [frame("ok", 0, w, h).sharpness for w, h in ((1280, 720), (1920, 1080), (3840, 2160))]
    assert max(values) / min(values) < 3


def test_ir_night_frame_is_colourless_but_not_dark() -> None:
    night = frame("night")
    assert night.colourfulness < T.night_colourfulness < frame("ok").colourfulness
    assert night.brightness > T.dark_brightness


def test_covered_frame_is_mostly_uniform() -> None:
    assert frame("covered").uniform_fraction >= T.covered_uniform_fraction > frame("ok").uniform_fraction


def test_resent_frame_has_zero_difference_and_new_frames_do_not() -> None:
    a, b = frame("ok", 1), frame("ok", 2)
    assert A.frame_difference(a.signature, a.signature) == 0
    assert A.frame_difference(a.signature, b.signature) > T.frozen_difference


def test_structural_change_ignores_exposure_but_sees_a_turned_camera() -> None:
    ref = frame("ok", 1).signature
    brighter = np.clip(ref * 1.3 + 12, 0, 255).astype(np.float32)
    assert A.structural_change(brighter, ref) < 0.05
    assert A.structural_change(frame("moved").signature, ref) > T.moved_change


def test_half_obstructed_view_counts_as_changed() -> None:
    img = fault(base(), "ok", frame=3)
    img[:, : img.shape[1] // 2] = (30, 80, 30)  # a branch or a sign in front of the lens
    changed = A.measure(img).signature
    assert A.structural_change(changed, frame("ok", 1).signature) > T.moved_change


def test_grey_image_measures_without_colour() -> None:
    grey = cv2.cvtColor(fault(base(), "ok"), cv2.COLOR_BGR2GRAY)
    m = A.measure(np.asarray(grey, dtype=np.uint8))
    assert m.colourfulness == 0 and m.brightness > 50


# --- single-frame detection -------------------------------------------------------------------

@pytest.mark.parametrize(
    ("scene", "expected"),
    [("ok", set()), ("night", set()), ("dark", {Condition.DARK}), ("blurred", {Condition.BLURRED}),
     ("covered", {Condition.COVERED})],
)
def test_detect_names_what_one_frame_shows(scene: Scene, expected: set[Condition]) -> None:
    assert detect(frame(scene), previous=None, reference=None, t=T) == expected


def test_dark_lens_reports_dark_not_covered_nor_blurred() -> None:
    assert detect(frame("dark"), previous=None, reference=None, t=T) == {Condition.DARK}


# --- hysteresis ---------------------------------------------------------------------------------

def feed(cam: CameraHealth, scenes: list[Scene], t: Thresholds = T, start: int = 0) -> list[str]:
    return [cam.update(frame(s, start + i), t).health for i, s in enumerate(scenes)]


@pytest.mark.parametrize("scene", ["dark", "blurred", "covered", "moved"])
def test_condition_raises_after_n_frames_and_clears_after_m(scene: Scene) -> None:
    cam = CameraHealth()
    feed(cam, ["ok"] * 4)  # learns the reference view
    healths = [cam.update(frame(scene, 10 + i), T) for i in range(T.raise_after)]
    assert [h.health for h in healths[:-1]] == ["ok"] * (T.raise_after - 1)
    assert healths[-1].health == scene and healths[-1].raised == (Condition(scene),)
    back = [cam.update(frame("ok", 20 + i), T) for i in range(T.clear_after)]
    assert [h.health for h in back[:-1]] == [scene] * (T.clear_after - 1)
    assert back[-1].health == "ok" and back[-1].cleared == (Condition(scene),)


def test_frozen_camera_resending_the_same_frame_is_raised_then_cleared() -> None:
    cam = CameraHealth()
    feed(cam, ["ok"] * 3)
    same = frame("ok", 99)
    states = [cam.update(same, T) for _ in range(T.raise_after + 1)]
    assert states[-1].health == "frozen" and Condition.FROZEN in states[-1].active
    assert feed(cam, ["ok"] * T.clear_after, start=40)[-1] == "ok"


def test_one_odd_frame_neither_raises_nor_clears() -> None:
    cam = CameraHealth()
    assert feed(cam, ["ok", "dark", "ok", "dark", "ok"]) == ["ok"] * 5
    feed(cam, ["dark"] * 3, start=50)
    assert feed(cam, ["ok", "dark"], start=60) == ["dark", "dark"]


def test_night_mode_is_normal_and_keeps_its_own_reference() -> None:
    cam = CameraHealth()
    feed(cam, ["ok"] * 4)
    assert feed(cam, ["night"] * 6, start=10) == ["ok"] * 6
    assert set(cam.references) == {"day", "night"}


def test_precedence_covered_over_frozen_is_frozen_first() -> None:
    cam = CameraHealth()
    feed(cam, ["ok"] * 3)
    same_covered = frame("covered", 5)
    for _ in range(T.raise_after + 1):
        upd = cam.update(same_covered, T)
    assert {Condition.FROZEN, Condition.COVERED} <= upd.active
    assert upd.health == "frozen"


def test_reset_reference_clears_moved_and_learns_the_new_view() -> None:
    cam = CameraHealth()
    feed(cam, ["ok"] * 3)
    assert feed(cam, ["moved"] * 3, start=10)[-1] == "moved"
    cam.reset_reference()
    assert feed(cam, ["moved"] * 5, start=20) == ["ok"] * 5


# --- per-camera overrides -----------------------------------------------------------------------

def test_override_changes_one_threshold_and_keeps_the_others() -> None:
    t = T.with_overrides({"blurred_sharpness": 1, "raise_after": 1})
    assert t.blurred_sharpness == 1.0 and t.raise_after == 1 and t.dark_brightness == T.dark_brightness
    cam = CameraHealth()
    assert feed(cam, ["blurred"] * 3, t) == ["ok"] * 3  # this camera looks at fog: accepted
    assert feed(cam, ["dark"], t, start=5) == ["dark"]  # raise_after=1


@pytest.mark.parametrize("bad", [{"no_such": 1}, {"dark_brightness": -1}, {"raise_after": 0}, {"dark_brightness": "x"}])
def test_bad_override_is_refused_with_its_name(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        T.with_overrides(bad)
