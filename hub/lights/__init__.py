"""Street lights (kind `light`): sun times, schedules, alarms, commands with delivery tracking.

Pure: `sun` (sunrise/sunset for the township), `schedule` (fixed / sun mode → next on/off),
`alarms` (fault, out at night, battery low with hysteresis), `commands` (the §6 envelope and
delivery states). I/O: `store` (SQLite batches) and `service` (LightService). docs/lights.md.
"""
