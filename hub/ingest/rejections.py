"""Count every rejection; log it once per (device, kind, reason) so a noisy device cannot flood the log."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

from hub import metrics

log = logging.getLogger("hub.ingest")

_MAX_REMEMBERED = 10_000


class RejectionLog:
    def __init__(self) -> None:
        self._seen: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._lock = threading.Lock()
        # metric children by label values (kinds, reasons and field names are a small fixed set)
        self._children: dict[tuple[str, ...], Any] = {}

    def reject(self, kind: str, reason: str, device_id: str, detail: str = "") -> None:
        child = self._children.get((kind, reason))
        if child is None:
            child = self._children[(kind, reason)] = metrics.messages_rejected.labels(kind=kind, reason=reason)
        child.inc()
        self._log(kind, reason, device_id, detail)

    def reject_field(self, field: str, reason: str, device_id: str) -> None:
        child = self._children.get((field, reason, ""))
        if child is None:
            child = self._children[(field, reason, "")] = metrics.fields_rejected.labels(field=field, reason=reason)
        child.inc()
        self._log("heartbeat_field", f"{field}:{reason}", device_id, "")

    def _log(self, kind: str, reason: str, device_id: str, detail: str) -> None:
        key = (device_id, kind, reason)
        with self._lock:
            first = key not in self._seen
            if first:
                self._seen[key] = None
                if len(self._seen) > _MAX_REMEMBERED:
                    self._seen.popitem(last=False)
        if first:
            log.warning("rejected %s from %s: %s %s (further ones counted in /metrics)",
                        kind, device_id, reason, detail[:200])
        else:
            log.debug("rejected %s from %s: %s %s", kind, device_id, reason, detail[:200])
