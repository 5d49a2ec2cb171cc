"""What the ledger answers when a request cannot be done (the API maps each to a status),
and the ledger's input checks shared by the facade and the photo desk."""

from __future__ import annotations

import math
from typing import Final

MIN_TS: Final = 946_684_800.0  # 2000-01-01
MAX_TS: Final = 7_258_118_400.0  # 2200-01-01


class NotFound(Exception):
    """No such problem / photo (404)."""


class Invalid(ValueError):
    """Bad input naming its field (422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


class Conflict(Exception):
    """The request does not fit the problem's state (409)."""


class Unavailable(Exception):
    """A collaborator is not there now, e.g. the MQTT client (503)."""


def check_ts(value: float | None, field: str) -> None:
    if value is not None and not (math.isfinite(value) and MIN_TS <= value <= MAX_TS):
        raise Invalid(field, "must be a Unix time in seconds between 2000 and 2200")
