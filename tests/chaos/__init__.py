"""Chaos scenarios (issue 8): real Mosquitto, InfluxDB and hub processes, faults injected."""
