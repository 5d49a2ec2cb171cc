"""The device domain: heartbeats, events, status, presence, live state and fleet counts.

`heartbeat`, `events`, `status`, `presence` and `fleet` are pure; `livestate` holds the fleet's
latest state in memory (a lock, no I/O). `handlers` turns one inbound message into points and
effects, which `hub.ingest.pipeline` applies.
"""
