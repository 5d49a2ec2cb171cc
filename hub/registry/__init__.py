"""Device registry: villages, groups (村民组) and devices; township files; the sample township."""

from __future__ import annotations

from pathlib import Path

from hub.registry.model import Device, Group, ImportReport, Kind, Township, Village
from hub.registry.store import Registry, RegistryError
from hub.registry.township_file import TownshipFileError, parse_township

SAMPLE_TOWNSHIP = Path(__file__).resolve().parent.parent / "data" / "township.yaml"

__all__ = [
    "SAMPLE_TOWNSHIP",
    "Device",
    "Group",
    "ImportReport",
    "Kind",
    "Registry",
    "RegistryError",
    "Township",
    "TownshipFileError",
    "Village",
    "parse_township",
]
