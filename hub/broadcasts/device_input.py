"""What the loudspeakers tell the broadcast service (called by the ingest pipeline): §6 acks,
presence (a reconnect resends what is still owed) and the heartbeat's play state. Changes are
recorded in batches (`Recorder.flush_soon`)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from hub.broadcasts.acks import parse_ack
from hub.broadcasts.dispatch import Dispatcher
from hub.broadcasts.outcomes import Recorder
from hub.broadcasts.store import BroadcastStore
from hub.messages import Rejection
from hub.rejections import REJECTIONS

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class DeviceInput:
    store: BroadcastStore
    dispatch: Dispatcher
    recorder: Recorder
    lock: threading.RLock

    def on_ack(self, device_id: str, payload: bytes, received_at: float) -> bool:
        """One §6 ack. True when accepted; False when rejected (already counted in
        vh_messages_rejected_total{kind="ack"} and logged): the caller counts only accepted."""
        parsed = parse_ack(payload, device_id)
        if isinstance(parsed, Rejection):
            REJECTIONS.reject(parsed)
            return False
        with self.lock:
            d = self.dispatch.open.get(parsed.command_id)
            if d is None:
                d = self.store.get_delivery(parsed.command_id)
            if d is None:
                if parsed.command_id in self.dispatch.stop_ids:
                    return True  # the ack of a `stop`
                REJECTIONS.reject(Rejection("ack", "unknown_command", device_id, parsed.command_id))
                return False
            if d.device_id != device_id:
                REJECTIONS.reject(Rejection("ack", "wrong_device", device_id, parsed.command_id))
                return False
            self.dispatch.on_ack(d, parsed.state, parsed.reason, received_at)
            self.recorder.flush_soon()
            return True

    def on_presence(self, device_id: str, online: bool, ts: float) -> None:
        if not online:
            return
        with self.lock:
            self.dispatch.on_reconnect(device_id, ts)
            self.recorder.flush_soon()

    def on_speaker_heartbeat(self, device_id: str, state: str | None, playing: str | None,
                             ts: float) -> None:
        if not playing:
            rt = self.dispatch.speakers.get(device_id)
            if rt is None or rt.current is None:
                return  # nothing of ours on it: changes nothing (every speaker heartbeat comes here)
        with self.lock:
            self.dispatch.on_heartbeat(device_id, state, playing, ts)
            self.recorder.flush_soon()
