"""InfluxDB 1.x through its HTTP API: `/ping`, `/query` (InfluxQL), `/write` (line protocol).

Also serves InfluxDB 1.8+ and 2.x's v1 compatibility API. One keep-alive HTTP client
(httpx, thread-safe connection pool) is shared by the writer threads and the API.

Status mapping of `/write`:
- 204 → written;
- 400, 413, 422 → RejectedBatchError with the server's error text (a 400 "partial write"
  has stored the good points already; rewriting them is harmless: same series and time
  overwrite);
- 404 "database not found" → the database is created again, the write retried once;
- 401/403, 429, 5xx, connection errors, timeouts → TransientStoreError, `retry_after`
  from the Retry-After header (seconds or an HTTP date). Credentials can be fixed without
  losing points, so an auth failure is transient too: the points wait in the spool.
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from typing import Any

import httpx

from hub.messages import Point
from hub.tsdb import influxql
from hub.tsdb.base import Bucket, RejectedBatchError, SeriesQuery, TransientStoreError

log = logging.getLogger(__name__)

REJECT_STATUSES = frozenset({400, 413, 422})
RETENTION_POLICY = "villagehub"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds from now: `120` or an HTTP date. None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_text(response: httpx.Response) -> str:
    """InfluxDB's `{"error": "..."}` body, or the raw text."""
    try:
        body = response.json()
        if isinstance(body, dict) and "error" in body:
            return str(body["error"])
    except ValueError:
        pass
    return response.text.strip()[:2000] or f"HTTP {response.status_code}"


class InfluxV1Store:
    name = "influx_v1"

    def __init__(
        self,
        url: str,
        db: str = "villagehub",
        user: str | None = None,
        password: str | None = None,
        retention: str | None = "0s",
        timeout: float = 5.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.db = db
        self.retention = influxql.check_duration(retention) if retention else None
        self.rp = RETENTION_POLICY if self.retention else None
        auth = (user, password or "") if user else None
        self.timeout = timeout
        self._client = httpx.Client(
            base_url=self.url,
            auth=auth,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
            headers={"User-Agent": "villagehub"},
        )
        self._field_types: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    # -- setup and health -------------------------------------------------------------

    def setup(self) -> None:
        """CREATE DATABASE and the `villagehub` retention policy (DEFAULT) when missing."""
        self._query(f"CREATE DATABASE {influxql.quote_ident(self.db)}", post=True, db=None)
        if not self.retention:
            return
        rp, db = influxql.quote_ident(RETENTION_POLICY), influxql.quote_ident(self.db)
        try:
            self._query(
                f"CREATE RETENTION POLICY {rp} ON {db} DURATION {self.retention} "
                "REPLICATION 1 DEFAULT",
                post=True,
            )
        except ValueError as err:  # exists with another duration: bring it in line
            if "already exists" not in str(err):
                raise
            self._query(
                f"ALTER RETENTION POLICY {rp} ON {db} DURATION {self.retention} DEFAULT",
                post=True,
            )

    def ping(self) -> bool:
        try:
            return self._client.get("/ping", timeout=min(self.timeout, 2.0)).status_code == 204
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        self._client.close()

    # -- writing ----------------------------------------------------------------------

    def write_lines(self, lines: list[str]) -> None:
        if not lines:
            return
        body = "\n".join(lines).encode()
        response = self._post_write(body)
        if response.status_code == 404 and "database not found" in error_text(response):
            log.warning("database %s missing on %s: creating it again", self.db, self.url)
            self._setup_transient()
            response = self._post_write(body)
        status = response.status_code
        if status == 204 or 200 <= status < 300:
            return
        reason = error_text(response)
        if status in REJECT_STATUSES:
            raise RejectedBatchError(reason, status)
        raise TransientStoreError(
            f"InfluxDB answered {status}: {reason}",
            parse_retry_after(response.headers.get("Retry-After")),
        )

    def _post_write(self, body: bytes) -> httpx.Response:
        params = {"db": self.db, "precision": "ns"}
        if self.rp:
            params["rp"] = self.rp
        try:
            return self._client.post(
                "/write", params=params, content=body,
                headers={"Content-Type": "text/plain; charset=utf-8"},
            )
        except httpx.TimeoutException as err:
            raise TransientStoreError(f"InfluxDB timed out after {self.timeout}s: {err}") from err
        except httpx.HTTPError as err:
            raise TransientStoreError(f"InfluxDB unreachable: {err}") from err

    def _setup_transient(self) -> None:
        try:
            self.setup()
        except (httpx.HTTPError, ValueError) as err:
            raise TransientStoreError(f"cannot create database {self.db}: {err}") from err

    # -- reading ----------------------------------------------------------------------

    def series(self, q: SeriesQuery) -> list[Bucket]:
        try:
            result = self._query(influxql.series_statement(q, self.rp))
        except ValueError as err:
            if "string" in str(err) and "unsupported" in str(err):
                return []  # a text field has no numeric aggregate (the SQLite store agrees)
            if "boolean" not in str(err):
                raise
            # InfluxQL has no mean/sum/min/max of booleans: aggregate them here as 1/0.
            raw = self._query(influxql.raw_statement(q, self.rp))
            return influxql.aggregate_buckets(influxql.decode_samples(raw), q.every, q.aggregate)
        return influxql.decode_buckets(result)

    def read_points(
        self,
        measurement: str,
        tags: dict[str, str] | None = None,
        start: float | None = None,
        end: float | None = None,
        limit: int = 10_000,
    ) -> list[Point]:
        stmt = influxql.read_statement(measurement, tags, start, end, limit, self.rp)
        result = self._query(stmt)
        types = self._types(measurement, result)
        return influxql.decode_points(measurement, result, types, limit)

    def _types(self, measurement: str, result: dict[str, Any]) -> dict[str, str]:
        with self._lock:
            known = self._field_types.get(measurement, {})
        needed = {c for s in result.get("series", []) or [] for c in s["columns"][1:]}
        if needed <= known.keys():
            return known
        src = influxql.source(measurement, self.rp)
        types = influxql.decode_field_types(self._query(f"SHOW FIELD KEYS FROM {src}"))
        with self._lock:
            self._field_types[measurement] = types
        return types

    def _query(self, q: str, *, post: bool = False, db: str | None = "") -> dict[str, Any]:
        """Run one InfluxQL statement; ValueError with InfluxDB's message on a query error,
        TransientStoreError when the server cannot be reached or fails."""
        params = {"q": q, "epoch": "ns"}
        if db is not None:
            params["db"] = db or self.db
        try:
            if post:
                response = self._client.post("/query", data=params)
            else:
                response = self._client.get("/query", params=params)
        except httpx.HTTPError as err:
            raise TransientStoreError(f"InfluxDB query failed: {err}") from err
        if response.status_code >= 500 or response.status_code in (401, 403, 429):
            raise TransientStoreError(
                f"InfluxDB answered {response.status_code}: {error_text(response)}",
                parse_retry_after(response.headers.get("Retry-After")),
            )
        try:
            body = response.json()
        except ValueError as err:
            raise ValueError(f"InfluxDB answered {response.status_code}: {response.text[:500]}") from err
        return influxql.first_result(body)
