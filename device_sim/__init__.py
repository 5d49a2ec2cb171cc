"""VillageHub device simulator: cameras and loudspeakers that behave like field firmware.

Shares no code with `hub/`: it is written from the device side of PROTOCOL.md.
"""

from device_sim.clock import ManualClock, SceneClock, SystemClock
from device_sim.device import DeviceOptions
from device_sim.faults import FAULTS, Scenario, load_scenario, parse_scenario
from device_sim.fleet import Fleet, FleetConfig, parse_broker_url
from device_sim.township import DeviceSpec, from_counts, load_credentials, load_township

__all__ = [
    "FAULTS", "DeviceOptions", "DeviceSpec", "Fleet", "FleetConfig", "ManualClock", "Scenario",
    "SceneClock", "SystemClock", "from_counts", "load_credentials", "load_scenario",
    "load_township", "parse_broker_url", "parse_scenario",
]
