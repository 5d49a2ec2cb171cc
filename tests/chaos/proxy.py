"""A loopback HTTP proxy in front of InfluxDB that injects faults on `/write`: added latency,
or an error status (503, 429) with Retry-After. It counts the requests it sees, so a test can
tell a honoured backoff from a tight retry loop. Other paths (`/ping`, `/query`) pass through.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass
class FaultMode:
    delay_s: float = 0.0  # added before forwarding a /write
    status: int | None = None  # answer /write with this status instead of forwarding
    retry_after: str | None = None  # the Retry-After header sent with `status`


@dataclass
class ProxyStats:
    writes: list[tuple[float, int]] = field(default_factory=list)  # (monotonic time, status answered)

    def writes_between(self, t0: float, t1: float) -> int:
        return sum(1 for t, _ in self.writes if t0 <= t < t1)


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.up_host, self.up_port = parts.hostname or "127.0.0.1", parts.port or 8086
        self.mode = FaultMode()
        self.stats = ProxyStats()
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                mode = proxy.mode
                is_write = self.path.startswith("/write")
                if is_write and mode.delay_s:
                    time.sleep(mode.delay_s)
                if is_write and mode.status is not None:
                    payload = b'{"error":"injected by the chaos proxy"}'
                    self.send_response(mode.status)
                    if mode.retry_after is not None:
                        self.send_header("Retry-After", mode.retry_after)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    proxy._record(is_write, mode.status)
                    return
                conn = http.client.HTTPConnection(proxy.up_host, proxy.up_port, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    self.send_response(resp.status)
                    for k, v in resp.getheaders():
                        if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    proxy._record(is_write, resp.status)
                except OSError:
                    self.send_error(502)
                    proxy._record(is_write, 502)
                finally:
                    conn.close()

            do_GET = do_POST = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, name="chaos-proxy", daemon=True)

    def _record(self, is_write: bool, status: int) -> None:
        if is_write:
            with self._lock:
                self.stats.writes.append((time.monotonic(), status))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
