"""Dead-letter file: lines the store refused, with the server's reason (JSON lines).

One JSON object per line: `{"ts": <hub time>, "measurement": "...", "device": "...",
"status": 400, "reason": "<the server's words>", "line": "<the line as sent>"}`. The file
rotates to `<name>.1` past `max_bytes` (one old file kept), so it cannot fill the disk.
Replaying a fixed line is a manual step: correct it and POST it to the store's /write.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

from hub.tsdb.lineparse import line_measurement

log = logging.getLogger(__name__)


def line_device(line: str) -> str:
    """The `device` tag of a line, for logs ("?" when absent)."""
    i = line.find(",device=")
    if i < 0:
        return "?"
    start = i + len(",device=")
    end = start
    while end < len(line) and line[end] not in ", ":
        end += 2 if line[end] == "\\" else 1
    return line[start:end].replace("\\", "")


class DeadLetterFile:
    def __init__(self, path: Path, max_bytes: int = 64 << 20) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def write(self, lines: list[str], reason: str, status: int | None, ts: float) -> None:
        records = []
        for line in lines:
            device = line_device(line)
            log.warning(
                "store refused a point (device=%s, measurement=%s): %s",
                device, line_measurement(line), reason,
            )
            records.append(json.dumps(
                {"ts": ts, "measurement": line_measurement(line), "device": device,
                 "status": status, "reason": reason, "line": line},
                ensure_ascii=False,
            ))
        data = ("\n".join(records) + "\n").encode()
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if self.path.exists() and self.path.stat().st_size + len(data) > self.max_bytes:
                    os.replace(self.path, self.path.with_name(self.path.name + ".1"))
                with open(self.path, "ab") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError:
                log.exception("cannot write the dead-letter file %s", self.path)

    def read(self) -> list[dict[str, object]]:
        """Every record of the current file (tests, tools)."""
        if not self.path.exists():
            return []
        return [json.loads(x) for x in self.path.read_text().splitlines() if x.strip()]
