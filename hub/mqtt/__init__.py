"""The hub's MQTT edge (paho-mqtt 2.x)."""
