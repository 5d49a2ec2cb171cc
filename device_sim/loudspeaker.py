"""A simulated loudspeaker: the pure `SpeakerPlayer` wired to MQTT acks and heartbeats."""

from __future__ import annotations

from typing import Any, ClassVar

from device_sim.device import SimDevice
from device_sim.netloop import Timer
from device_sim.payloads import Kind
from device_sim.speaker import Ack, SpeakerPlayer

BUTTON_CHANCE_PER_HEARTBEAT = 0.001  # a villager presses the call button


class SimSpeaker(SimDevice):
    kind: ClassVar[Kind] = "speaker"

    def setup(self) -> SimSpeaker:
        self.player = SpeakerPlayer(volume=60)
        self._end_timer: Timer | None = None
        self.amp_base = self.rng.uniform(30, 38)
        return self

    def _send_acks(self, acks: list[Ack]) -> None:
        for a in acks:
            self.ack(a.cmd_id, a.state, a.reason)
        self._arm_end()

    def _arm_end(self) -> None:
        if self._end_timer is not None:
            self._end_timer.cancel()
            self._end_timer = None
        cur = self.player.current
        if cur is not None:
            self._end_timer = self.loop.call_later(max(0.0, cur.ends_at - self.now()), self._end)

    def _end(self) -> None:
        self._end_timer = None
        self._send_acks(self.player.tick(self.now()))

    def handle_command(self, cmd: dict[str, Any]) -> None:
        self._send_acks(self.player.handle(cmd, self.now()))

    def apply_fault(self, name: str, on: bool, params: dict[str, Any]) -> None:
        if name == "speaker_fault":
            self._send_acks(self.player.set_fault(on, self.now()))
            if on:
                self.event("fault", {"component": "speaker", "code": "driver_open_circuit"})
        elif name == "amp_overheat" and on:
            self.event("fault", {"component": "amplifier", "code": "overheat",
                                 "temp_c": float(params.get("temp_c", 92.0))})

    def heartbeat_fields(self) -> dict[str, Any]:
        self._send_acks(self.player.tick(self.now()))
        if self.rng.random() < BUTTON_CHANCE_PER_HEARTBEAT:
            self.event("button", {"button": "call"})
        playing = self.player.current is not None
        hot = self.faults.get("amp_overheat")
        amp = float(hot["temp_c"]) if hot else self.amp_base + (8 if playing else 0)
        fields: dict[str, Any] = self.player.heartbeat_state()
        fields.update(
            amp_temp_c=round(amp + self.rng.gauss(0, 0.3), 1),
            power_w=round(2.5 + (0.3 * self.player.volume if playing else 0), 1),
            mains=True,
            battery_pct=100,
        )
        return fields
