"""A simulated camera: scheduled and commanded snapshots, camera heartbeat fields, picture faults."""

from __future__ import annotations

import logging
from collections import OrderedDict
from concurrent.futures import Executor, Future
from typing import Any, ClassVar, Final

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from device_sim.clock import SceneClock
from device_sim.device import SimDevice
from device_sim.netloop import Timer
from device_sim.payloads import Kind
from device_sim.scene import Effects, SceneRenderer, daylight

log = logging.getLogger(__name__)
MOTION_EVENT_CHANCE: Final = 0.15  # of snapshots that show a moving person or vehicle
SEEN_IDS_KEPT: Final = 1024
NOT_A_JPEG: Final = b"GIF89a\x01\x00\x01\x00 this is not a jpeg"


class SimCamera(SimDevice):
    kind: ClassVar[Kind] = "camera"
    scene_clock: SceneClock
    renders: Executor

    def setup(self, scene_clock: SceneClock, renders: Executor) -> SimCamera:
        self.scene_clock = scene_clock
        self.renders = renders
        self.renderer: SceneRenderer | None = None
        self._in_flight = False
        self._snap_timer: Timer | None = None
        self._seen: OrderedDict[str, str] = OrderedDict()
        self.storage_free = self.rng.uniform(40, 95)
        self.snapshots_sent = 0
        return self

    def on_online(self) -> None:
        iv = self.opts.snapshot_interval_s
        if iv > 0 and self._snap_timer is None:
            self._snap_timer = self.loop.call_later(self.rng.uniform(0, iv), self._snapshot_tick)

    def _snapshot_tick(self) -> None:
        self._snap_timer = self.loop.call_later(self.opts.snapshot_interval_s, self._snapshot_tick)
        self.take_snapshot("schedule")

    def effects(self) -> Effects:
        f = self.faults
        return Effects(dark="dark" in f, blurred="blurred" in f, covered="covered" in f,
                       frozen="frozen" in f, moved_px=int(f["moved"]["px"]) if "moved" in f else 0)

    def take_snapshot(self, trigger: str, cmd_id: str | None = None) -> None:
        """Render off the loop thread, publish back on it."""
        if not self.connected.is_set():
            return
        if self._in_flight and cmd_id is None:
            self.stats.renders_skipped += 1
            return
        if "malformed" in self.faults and self.seq % 2 == 0 and cmd_id is None:
            self._send(NOT_A_JPEG, trigger, cmd_id)
            return
        if self.renderer is None:
            self.renderer = SceneRenderer(self.id, self.opts.width, self.opts.height, self.opts.jpeg_quality)
        renderer, effects, scene_ts = self.renderer, self.effects(), self.scene_clock.now()
        self._in_flight = True
        fut = self.renders.submit(renderer.snapshot, scene_ts, effects)

        def done(f: Future[bytes]) -> None:
            self.loop.call_soon_threadsafe(lambda: self._rendered(f, trigger, cmd_id))
        fut.add_done_callback(done)

    def _rendered(self, f: Future[bytes], trigger: str, cmd_id: str | None) -> None:
        self._in_flight = False
        try:
            jpeg = f.result()
        except Exception:
            log.exception("camera %s: rendering failed", self.id)
            if cmd_id:
                self._ack(cmd_id, "failed", "render error")
            return
        self._send(jpeg, trigger, cmd_id)
        if cmd_id:
            self._ack(cmd_id, "done")
        if trigger == "schedule" and self.renderer is not None and self.renderer.motion \
                and "frozen" not in self.faults and self.rng.random() < MOTION_EVENT_CHANCE:
            self.event("motion", {"score": round(self.rng.uniform(0.3, 0.95), 2)})

    def _send(self, jpeg: bytes, trigger: str, cmd_id: str | None) -> None:
        props: Properties | None = None
        if self.opts.mqtt_version == 5:
            props = Properties(PacketTypes.PUBLISH)
            user = [("ts", f"{self.now():.3f}"), ("trigger", trigger)]
            if cmd_id:
                user.append(("cmd_id", cmd_id))
            props.UserProperty = user
        self.publish(self.topics.snapshot, jpeg, qos=self.opts.snapshot_qos, properties=props)
        self.snapshots_sent += 1

    def _ack(self, cmd_id: str, state: str, reason: str | None = None) -> None:
        self._seen[cmd_id] = state
        while len(self._seen) > SEEN_IDS_KEPT:
            self._seen.popitem(last=False)
        self.ack(cmd_id, state, reason)

    def handle_command(self, cmd: dict[str, Any]) -> None:
        cmd_id: str = cmd["id"]
        if cmd_id in self._seen:  # redelivered: ack again, do not act again
            self.ack(cmd_id, self._seen[cmd_id], "duplicate")
            return
        expires = cmd.get("expires_at")
        if isinstance(expires, int | float) and not isinstance(expires, bool) and self.now() > expires:
            self._ack(cmd_id, "expired")
            return
        if cmd.get("action") != "snapshot":
            self._ack(cmd_id, "rejected", f"unknown action {cmd.get('action')!r}"[:80])
            return
        self._ack(cmd_id, "received")
        self.take_snapshot("command", cmd_id)

    def apply_fault(self, name: str, on: bool, params: dict[str, Any]) -> None:
        if on and name in ("covered", "moved"):
            self.event("tamper", {"reason": name})

    def heartbeat_fields(self) -> dict[str, Any]:
        light = daylight(self.scene_clock.now())
        self.storage_free = max(0.0, self.storage_free - self.rng.uniform(0, 0.01))
        return {
            "fps": 15 if "frozen" not in self.faults else 0,
            "bitrate_kbps": round(self.rng.gauss(2048 if light > 0.25 else 1400, 80)),
            "temp_c": round(34 + 10 * light + self.rng.gauss(0, 0.5), 1),
            "storage_free_pct": round(self.storage_free, 1),
            "recording": True,
            "stream_url": self.spec.stream_url or f"rtsp://{self.id}.local:554/stream1",
        }
