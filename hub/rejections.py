"""Every refusal of input, one way: a `Rejection` counted by reason and logged once per device
and reason per `LOG_EVERY_S` (with how many were left out since), so a noisy device cannot flood
the log and nothing is dropped in silence.

Counters: `vh_messages_rejected_total{kind, reason}`, or `vh_heartbeat_fields_rejected_total
{field, reason}` for one refused heartbeat field (the accounting invariant in `hub.metrics`
counts messages, not fields). Used by ingest, the MQTT receivers, snapshots, broadcasts and
street lights; `REJECTIONS` is the hub's shared log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from hub import metrics
from hub.messages import Rejection

log = logging.getLogger("hub.rejections")

LOG_EVERY_S = 60.0
_MAX_REMEMBERED = 10_000


class RejectionLog:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic, every_s: float = LOG_EVERY_S) -> None:
        self.monotonic = monotonic
        self.every_s = every_s
        # (device, kind, reason) → (monotonic time of the last line, rejections left out since)
        self._last: OrderedDict[tuple[str, str, str], tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()
        # metric children by label values (kinds, reasons and field names are a small fixed set)
        self._children: dict[tuple[str, str, str], Any] = {}

    def count(self, r: Rejection) -> None:
        """Count it, without a log line (a rejection that is routine, like a superseded snapshot)."""
        key = (r.kind, r.reason, r.field)
        child = self._children.get(key)
        if child is None:
            if r.field:
                child = metrics.fields_rejected.labels(field=r.field, reason=r.reason)
            else:
                child = metrics.messages_rejected.labels(kind=r.kind, reason=r.reason)
            self._children[key] = child
        child.inc()

    def reject(self, r: Rejection) -> None:
        """Count it and log it (at most once per device and reason per interval)."""
        self.count(r)
        kind = f"{r.kind} field {r.field}" if r.field else r.kind
        device = r.device_id or "-"
        key = (device, kind, r.reason)
        now = self.monotonic()
        with self._lock:
            last, left_out = self._last.get(key, (-float("inf"), 0))
            due = now - last >= self.every_s
            self._last[key] = (now, 0) if due else (last, left_out + 1)
            self._last.move_to_end(key)
            if len(self._last) > _MAX_REMEMBERED:
                self._last.popitem(last=False)
        if due:
            more = f" ({left_out} more since the last line)" if left_out else ""
            log.warning("rejected %s from %s: %s %s%s (every one counted in /metrics)",
                        kind, device, r.reason, r.detail[:200], more)
        else:
            log.debug("rejected %s from %s: %s %s", kind, device, r.reason, r.detail[:200])


REJECTIONS = RejectionLog()
