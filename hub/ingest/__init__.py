"""Ingest: from InboundMessage to stored points, live state, alerts and events."""
