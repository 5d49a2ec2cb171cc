"""VillageHub: the monitoring hub for smart villages (cameras and smart loudspeakers)."""

__version__ = "0.1.0"
