"""The broadcasts as the scheduler and the views read them: spec, recurrence and title per
id, parsed from the store once and cached."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hub.broadcasts.model import BroadcastSpec, Delivery, NotFound, spec_from_dict
from hub.broadcasts.schedule import Recurrence, parse_recurrence
from hub.broadcasts.store import BroadcastStore

LOADED_CACHED = 5000


@dataclass(slots=True)
class Loaded:
    spec: BroadcastSpec
    rec: Recurrence
    title: str


@dataclass
class Catalog:
    store: BroadcastStore
    default_tz: str
    _loaded: dict[str, Loaded] = field(default_factory=dict, init=False)

    def load(self, bid: str) -> Loaded:
        """Raises NotFound for an unknown id."""
        got = self._loaded.get(bid)
        if got is None:
            row = self.store.get_broadcast(bid)
            if row is None:
                raise NotFound(bid)
            if len(self._loaded) >= LOADED_CACHED:  # a cache: reloaded on demand
                self._loaded.clear()
            spec = spec_from_dict(json.loads(row["spec"]))
            rec = parse_recurrence(spec.start, spec.rrule, spec.tz, self.default_tz, row["created_at"])
            got = self._loaded[bid] = Loaded(spec, rec, row["title"])
        return got

    def play_body(self, d: Delivery) -> dict[str, Any]:
        """The §6 `play` command body of a delivery."""
        s = self.load(d.broadcast_id).spec
        return {"broadcast_id": d.broadcast_id, "priority": s.priority, "media": s.media,
                "volume": s.volume, "repeat": s.repeat}
