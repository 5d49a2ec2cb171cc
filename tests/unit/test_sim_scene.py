"""Simulated camera pictures show what each fault claims (metrics computed here with cv2)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from device_sim.scene import Effects, SceneRenderer, daylight

pytestmark = pytest.mark.unit
NOON = 1_764_388_800.0  # 12:00 in Asia/Shanghai
MIDNIGHT = NOON + 12 * 3600


def decode(jpeg: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return img


def metrics(jpeg: bytes) -> dict[str, float]:
    img = decode(jpeg)
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)[img.shape[0] // 10 :]  # below the overlay
    sat = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)[..., 1]
    return {"brightness": float(grey.mean()), "sharpness": float(cv2.Laplacian(grey, cv2.CV_64F).var()),
            "contrast": float(grey.std()), "saturation": float(sat.mean())}


@pytest.fixture(scope="module")
def cam() -> SceneRenderer:
    return SceneRenderer("cam-test", 640, 360)


def test_snapshot_is_a_jpeg_at_the_configured_resolution() -> None:
    jpeg = SceneRenderer("cam-x").snapshot(NOON)
    assert jpeg[:2] == b"\xff\xd8"
    assert decode(jpeg).shape == (720, 1280, 3)
    assert decode(SceneRenderer("cam-x", 320, 180).snapshot(NOON)).shape == (180, 320, 3)


def test_day_picture_is_bright_colourful_and_sharp(cam: SceneRenderer) -> None:
    m = metrics(cam.snapshot(NOON))
    assert 80 < m["brightness"] < 200 and m["sharpness"] > 150 and m["saturation"] > 20


def test_night_picture_is_grey_infrared(cam: SceneRenderer) -> None:
    assert daylight(MIDNIGHT) == 0.0 and daylight(NOON) == 1.0
    m = metrics(cam.snapshot(MIDNIGHT))
    assert m["saturation"] < 3 and m["brightness"] > 40


def test_dark_fault_gives_a_near_black_picture(cam: SceneRenderer) -> None:
    assert metrics(cam.snapshot(NOON, Effects(dark=True)))["brightness"] < 15


def test_blurred_fault_loses_sharpness_but_not_brightness(cam: SceneRenderer) -> None:
    sharp, blurred = metrics(cam.snapshot(NOON)), metrics(cam.snapshot(NOON, Effects(blurred=True)))
    assert blurred["sharpness"] < sharp["sharpness"] / 10
    assert abs(blurred["brightness"] - sharp["brightness"]) < 15


def test_covered_lens_gives_a_flat_dim_picture(cam: SceneRenderer) -> None:
    m = metrics(cam.snapshot(NOON, Effects(covered=True)))
    assert m["contrast"] < 5 and m["brightness"] < 60 and m["sharpness"] < 50


def test_frozen_camera_repeats_its_last_picture_byte_for_byte() -> None:
    cam = SceneRenderer("cam-frozen", 320, 180)
    first = cam.snapshot(NOON)
    assert cam.snapshot(NOON + 600, Effects(frozen=True)) == first
    assert cam.snapshot(NOON + 600) != first


def test_moved_camera_shows_a_shifted_scene(cam: SceneRenderer) -> None:
    a = cv2.cvtColor(decode(cam.snapshot(NOON)), cv2.COLOR_BGR2GRAY).astype(float)
    b = cv2.cvtColor(decode(cam.snapshot(NOON, Effects(moved_px=60))), cv2.COLOR_BGR2GRAY).astype(float)
    same = cv2.cvtColor(decode(cam.snapshot(NOON)), cv2.COLOR_BGR2GRAY).astype(float)
    assert np.abs(a - b).mean() > 4 * np.abs(a - same).mean()


def test_scene_changes_over_time_with_moving_people_and_vehicles(cam: SceneRenderer) -> None:
    frames = [cv2.cvtColor(decode(cam.snapshot(NOON + 20 * i)), cv2.COLOR_BGR2GRAY) for i in range(3)]
    assert np.abs(frames[0].astype(float) - frames[2].astype(float)).max() > 100
