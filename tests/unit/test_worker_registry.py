"""The registry as an ingest worker process sees it: tags pushed by the hub replace the old ones,
and an unchanged device keeps its entry object (the pipeline's per-device caches check it by
identity, so a push of 10,000 devices does not rebuild them)."""

from __future__ import annotations

from hub.ingest.workerproc import WorkerRegistry


def test_unchanged_devices_keep_their_entry_and_changed_ones_get_a_new_one() -> None:
    reg = WorkerRegistry()
    reg.replace({"cam-1": ("camera", "v1", "g1"), "spk-1": ("speaker", "v1", "")})
    cam, spk = reg.get("cam-1"), reg.get("spk-1")
    assert cam is not None and (cam.name, cam.kind, cam.village, cam.group) == ("cam-1", "camera", "v1", "g1")
    reg.replace({"cam-1": ("camera", "v1", "g1"), "spk-1": ("speaker", "v2", ""), "lt-1": ("light", "", "")})
    assert reg.get("cam-1") is cam
    moved = reg.get("spk-1")
    assert moved is not spk and moved is not None and moved.village == "v2"
    lamp = reg.get("lt-1")
    assert lamp is not None and lamp.kind == "light"


def test_a_device_left_out_of_a_push_is_gone() -> None:
    reg = WorkerRegistry()
    reg.replace({"cam-1": ("camera", "v1", "g1")})
    reg.replace({})
    assert reg.get("cam-1") is None
