"""Time-series storage: one small interface, several backends (InfluxDB v1, v2, embedded SQLite)."""
