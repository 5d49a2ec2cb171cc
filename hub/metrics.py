"""Prometheus metrics of the hub: one place, stable names, a reason label on every rejection.

The accounting invariant (issue 8), per message kind K:
  vh_messages_received_total{kind=K}
    == sum(vh_messages_rejected_total{kind=K}) + vh_messages_dropped_total{kind=K}
       + vh_messages_accepted_total{kind=K}                       (status, heartbeat, event, ack;
                                     for snapshots vh_snapshots_analysed_total counts the accepted)
and for the kinds stored as one point each (heartbeat → `heartbeat`, event → `event`,
snapshot → `snapshot`, measurement = K):
  accepted(K)
    == vh_points_stored_total{measurement=K} + vh_points_spooled{measurement=K}
       + vh_points_refused_total{measurement=K} + vh_points_dropped_total{measurement=K}
`vh_points_spooled` is a gauge: a replayed spool moves its points to `vh_points_stored_total`.
A snapshot replaced in its camera's slot by a newer one is rejected with reason `superseded`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, GCCollector, Histogram

from hub import gcpolicy

REGISTRY = CollectorRegistry(auto_describe=True)
GCCollector(registry=REGISTRY)  # python_gc_collections_total{generation}: the collector's pauses
gc_frozen = Gauge("vh_gc_frozen_objects",
                  "Objects taken out of the garbage collector's walks once the process serves (hub.gcpolicy)",
                  registry=REGISTRY)
gc_frozen.set_function(gcpolicy.frozen_objects)

messages_received = Counter(
    "vh_messages_received", "MQTT messages received from devices", ["kind"], registry=REGISTRY
)
messages_rejected = Counter(
    "vh_messages_rejected", "Messages rejected whole, by reason", ["kind", "reason"], registry=REGISTRY
)
messages_dropped = Counter(
    "vh_messages_dropped", "QoS 0 messages dropped because the ingest queue was full", ["kind"], registry=REGISTRY
)
fields_rejected = Counter(
    "vh_heartbeat_fields_rejected", "Heartbeat fields rejected alone", ["field", "reason"], registry=REGISTRY
)
heartbeats_lost = Counter(
    "vh_heartbeats_lost", "Heartbeats missing by seq gaps", registry=REGISTRY
)
clock_skew = Counter(
    "vh_clock_skew", "Messages whose device ts differed from the hub clock by more than the limit",
    ["kind"], registry=REGISTRY,
)
points_written = Counter(
    "vh_points_written", "Points written to the time-series store", ["store"], registry=REGISTRY
)
points_dead_lettered = Counter(
    "vh_points_dead_lettered", "Points the store refused (kept in the dead-letter file)", registry=REGISTRY
)
write_errors = Counter(
    "vh_store_write_errors", "Failed write attempts to the time-series store", ["reason"], registry=REGISTRY
)
spool_bytes = Gauge("vh_spool_bytes", "Bytes waiting in the on-disk write spool", registry=REGISTRY)
ingest_queue_depth = Gauge("vh_ingest_queue_depth", "Messages waiting for ingest", registry=REGISTRY)
write_latency = Histogram(
    "vh_store_write_seconds", "Time of one batch write to the store", registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
devices_by_status = Gauge(
    "vh_devices", "Devices by kind and presence status", ["kind", "status"], registry=REGISTRY
)
alerts_open = Gauge("vh_alerts_open", "Open alerts", registry=REGISTRY)
mqtt_connected = Gauge("vh_mqtt_connected", "1 while the hub's MQTT client is connected", registry=REGISTRY)
messages_accepted = Counter(
    "vh_messages_accepted", "Messages accepted by their handler (heartbeat, status, event, ack)",
    ["kind"], registry=REGISTRY,
)

# --- camera snapshots (hub/snapshots) ---
snapshots_received = Counter(
    "vh_snapshots_received", "Snapshot payloads offered to the snapshot service", registry=REGISTRY
)
snapshots_rejected = Counter(
    "vh_snapshots_rejected", "Snapshots refused (also counted in vh_messages_rejected{kind=snapshot})",
    ["reason"], registry=REGISTRY,
)
snapshots_superseded = Counter(
    "vh_snapshots_superseded", "Snapshots replaced in a camera's latest-wins slot before analysis",
    registry=REGISTRY,
)
snapshots_analysed = Counter(
    "vh_snapshots_analysed", "Snapshots decoded, analysed and stored", registry=REGISTRY
)
snapshot_analysis_seconds = Histogram(
    "vh_snapshot_analysis_seconds", "Decode + analysis + thumbnail time of one snapshot", registry=REGISTRY,
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1),
)
snapshots_pending = Gauge(
    "vh_snapshots_pending", "Cameras with a snapshot waiting for analysis", registry=REGISTRY
)
snapshots_pending_bytes = Gauge(
    "vh_snapshots_pending_bytes", "Bytes of snapshots waiting for analysis", registry=REGISTRY
)
cameras_by_health = Gauge(
    "vh_cameras_by_health", "Cameras by image health (ok, dark, blurred, covered, frozen, moved, stale)",
    ["health"], registry=REGISTRY,
)

# --- time-series writer (hub/tsdb/writer.py): per measurement, for the accounting invariant ---
# A point is, at any moment, in exactly one of: stored, spooled (gauge), refused (dead letter),
# dropped (spool full and memory bound reached), or the writer's memory buffer.
points_stored = Counter(
    "vh_points_stored", "Points accepted by the time-series store (directly or replayed from the spool)",
    ["measurement"], registry=REGISTRY,
)
points_spooled = Gauge(
    "vh_points_spooled", "Points waiting in the on-disk write spool", ["measurement"], registry=REGISTRY
)
points_refused = Counter(
    "vh_points_refused", "Points the store refused (400/413/422), kept in the dead-letter file",
    ["measurement"], registry=REGISTRY,
)
points_dropped = Counter(
    "vh_points_dropped", "Points lost because the spool was full and the memory buffer too",
    ["measurement"], registry=REGISTRY,
)
store_up = Gauge("vh_store_up", "1 while the time-series store accepts writes", registry=REGISTRY)
registry_devices = Gauge(
    "vh_registry_devices",
    "Devices in the registry by kind; registered=\"false\" are devices seen publishing that no township file lists",
    ["kind", "registered"], registry=REGISTRY,
)

# --- broadcasts (hub/broadcasts) ---
broadcast_commands = Counter(
    "vh_broadcast_commands", "Commands sent to speakers: play, resend (same id, no `received` in time), stop",
    ["action"], registry=REGISTRY,
)
broadcast_deliveries = Counter(
    "vh_broadcast_deliveries", "Per-speaker deliveries that reached a final state", ["state"], registry=REGISTRY
)
broadcast_occurrences = Counter(
    "vh_broadcast_occurrences", "Broadcast occurrences by fate: fired, or missed (hub down past the grace)",
    ["status"], registry=REGISTRY,
)
