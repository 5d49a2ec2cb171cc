"""The look-ups the snapshot service is given (wired by hub.bootstrap).

The shared collaborator interfaces (publisher, alert, event and point sinks) are in hub.ports.
"""

from __future__ import annotations

from collections.abc import Callable

Lookup = Callable[[str], "tuple[str, str] | None"]  # device id → (village, group), None if unknown
HeartbeatLastSeen = Callable[[str], "float | None"]
