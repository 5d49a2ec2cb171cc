"""The hub process's own lean receiver (issue 12): with `VH_INGEST_WORKERS=0` on `mqtt://`, the
`heartbeat` and `ack` subscriptions are taken by `hub.ingest.mqttrx.MqttReceiver` on a connection
of their own (client id `<VH_MQTT_CLIENT_ID>-rx`, the hub's credentials, persistent session)
instead of paho, whose receive path was ~45 % of the hub's CPU per heartbeat.

Everything else stays on the paho client (`hub.mqtt.client`): `status` (the Will, presence),
`event`, `snapshot` (MQTT 5 user properties) and every publish. On `mqtts://` the hub keeps
today's paho path for all channels: the field listener forces client id = username, so a second
connection with the hub's credentials would take over the first.

The guarantees are those of the ingest workers: a batch is acknowledged only once durable
(`IngestWorker` → `MqttReceiver.ack_messages`, one write of PUBACKs, never on a later connection
than the message came on), unacknowledged messages are redelivered by the broker, retained
messages other than `status` are rejected (`Ingest.handle`), counters as on the paho path.
"""

from __future__ import annotations

import queue
from typing import TYPE_CHECKING

from hub.ingest.mqttrx import MqttReceiver, RxOptions
from hub.ingest.pipeline import Ingest, IngestWorker
from hub.messages import InboundMessage

if TYPE_CHECKING:
    from hub.services import Services
    from hub.settings import Settings

LEAN_CHANNELS = ("heartbeat", "ack")
SUBSCRIBE_WAIT_S = 3.0  # at start: heartbeats published before the first SUBACK of a new session are lost


def lean_channels(settings: Settings) -> tuple[str, ...]:
    """The channels the hub process receives with the lean receiver (none: all on paho)."""
    if settings.ingest.workers or settings.mqtt.url.tls:
        return ()
    return LEAN_CHANNELS


class HubReceiver:
    """One `MqttReceiver` feeding one `IngestWorker` of the hub process (its own inbox)."""

    def __init__(self, services: Services, ingest: Ingest, channels: tuple[str, ...]) -> None:
        s = services.settings
        m = s.mqtt.url
        # Each item is one network read (up to ~1,000 messages): a few batches' worth.
        self.inbox: queue.Queue[list[InboundMessage]] = queue.Queue(
            max(4, min(s.ingest.queue_size, 3 * s.writer.batch_size) // 1000))
        self.receiver = MqttReceiver(
            RxOptions(m.host, m.port, f"{s.mqtt.client_id}-rx", s.mqtt.protocol, m.username, m.password,
                      session_expiry_s=s.mqtt.session_expiry_s),
            services.topics, [(services.topics.inbound_filter(ch), 1) for ch in channels],
            self.inbox.put, now=services.clock.now,
        )
        self.worker = IngestWorker(ingest, self.inbox, ack_batch=self.receiver.ack_messages,
                                   batch_size=s.writer.batch_size, flush_s=s.writer.flush_s, name="ingest-rx")

    def start(self) -> None:
        self.worker.start()
        self.receiver.start()
        self.receiver.subscribed.wait(SUBSCRIBE_WAIT_S)

    def stop_taking(self) -> None:
        """From now on messages stay unacknowledged: the broker redelivers them to the next session."""
        self.receiver.accepting.clear()

    def stop(self, timeout: float) -> None:
        """Drain and commit what was taken (acks queued), then send the acks and DISCONNECT."""
        self.stop_taking()
        self.worker.stop(timeout)
        self.receiver.stop(1.0)
