"""Broadcasts to the smart loudspeakers: scheduling, targeting, arbitration, dispatch, tracking."""

from hub.broadcasts.config import BroadcastConfig
from hub.broadcasts.media import MediaError, MediaStore
from hub.broadcasts.model import BroadcastSpec, NotFound, Principal, SpeakerRef
from hub.broadcasts.schedule import ScheduleError
from hub.broadcasts.service import BroadcastService
from hub.targets import Targets

__all__ = [
    "BroadcastConfig", "BroadcastService", "BroadcastSpec", "MediaError", "MediaStore",
    "NotFound", "Principal", "ScheduleError", "SpeakerRef", "Targets",
]
