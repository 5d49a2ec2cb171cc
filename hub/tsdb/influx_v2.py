"""InfluxDB 2.x / Cloud through influxdb-client's token API (`VH_INFLUX_TOKEN` set).

Writes go through `write_api(SYNCHRONOUS)` (the client's own retries off: the DurableWriter
retries, spools and dead-letters); reads are Flux. Status mapping as for v1: 400/413/422 →
RejectedBatchError with the server's message; 401/403/429/5xx, connection errors and
timeouts → TransientStoreError with Retry-After.

Less tested than the other backends: no InfluxDB 2.x server can be installed on the
machines this project is built on, so this module is covered by unit tests of the Flux it
builds and the records it decodes, and by a loopback HTTP stub of `/api/v2/write` (status
mapping through the real client) — not by the store contract suite against a real server.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, cast

import urllib3
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.bucket_retention_rules import BucketRetentionRules
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from hub.messages import Point
from hub.tsdb.base import Bucket, RejectedBatchError, SeriesQuery, TransientStoreError
from hub.tsdb.influx_v1 import REJECT_STATUSES, parse_retry_after
from hub.tsdb.influxql import retention_seconds

log = logging.getLogger(__name__)

_FLUX_FN = {"mean": "mean", "min": "min", "max": "max", "last": "last", "count": "count", "sum": "sum"}
_META_COLUMNS = frozenset({"result", "table"})
_NS = cast(Any, WritePrecision.NS)


def flux_string(value: str) -> str:
    """A Flux string literal (backslash, quote and `${` interpolation escaped)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${")
    return f'"{escaped}"'


def flux_time(seconds: float) -> str:
    """Unix seconds → a Flux RFC 3339 time literal with microseconds."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def flux_duration(seconds: float) -> str:
    if seconds <= 0:
        raise ValueError("bucket width must be positive")
    return f"{int(seconds)}s" if float(seconds).is_integer() else f"{round(seconds * 1000)}ms"


def _filter(measurement: str, tags: Iterable[tuple[str, str]], field: str | None = None) -> str:
    conds = [f"r._measurement == {flux_string(measurement)}"]
    if field is not None:
        conds.append(f"r._field == {flux_string(field)}")
    conds.extend(f"r[{flux_string(k)}] == {flux_string(v)}" for k, v in tags)
    return f"  |> filter(fn: (r) => {' and '.join(conds)})\n"


def series_flux(bucket: str, q: SeriesQuery) -> str:
    """The Flux of `series()`: epoch-aligned windows like InfluxQL's GROUP BY time(),
    all matching series together, booleans as 1/0."""
    fn = _FLUX_FN[q.aggregate]
    return (
        f"from(bucket: {flux_string(bucket)})\n"
        f"  |> range(start: {flux_time(q.start)}, stop: {flux_time(q.end)})\n"
        + _filter(q.measurement, q.tags, q.field)
        + "  |> toFloat()\n  |> group()\n"
        f"  |> aggregateWindow(every: {flux_duration(q.every)}, fn: {fn}, createEmpty: false, "
        'timeSrc: "_start")\n'
        '  |> keep(columns: ["_time", "_value"])'
    )


def read_flux(
    bucket: str, measurement: str, tags: Mapping[str, str] | None,
    start: float | None, end: float | None, limit: int,
) -> str:
    """The Flux of `read_points()`: raw rows, at most `limit` per series and field."""
    stop = f", stop: {flux_time(end)}" if end is not None else ""
    return (
        f"from(bucket: {flux_string(bucket)})\n"
        f"  |> range(start: {flux_time(start or 0.0)}{stop})\n"
        + _filter(measurement, sorted((tags or {}).items()))
        + f"  |> sort(columns: [\"_time\"])\n  |> limit(n: {int(limit)})"
    )


def records_to_buckets(records: Iterable[Mapping[str, Any]]) -> list[Bucket]:
    out = [
        Bucket(start=r["_time"].timestamp(), value=None if r["_value"] is None else float(r["_value"]))
        for r in records
    ]
    return sorted(out, key=lambda b: b.start)


def records_to_points(
    measurement: str, records: Iterable[Mapping[str, Any]], limit: int
) -> list[Point]:
    """Rows of one field value each → points (fields merged by series and time), in time order."""
    merged: dict[tuple[float, tuple[tuple[str, str], ...]], dict[str, Any]] = {}
    for r in records:
        tags = tuple(sorted(
            (k, str(v)) for k, v in r.items()
            if not k.startswith("_") and k not in _META_COLUMNS and v not in (None, "")
        ))
        t = r["_time"].timestamp()
        merged.setdefault((t, tags), {})[r["_field"]] = r["_value"]
    keys = sorted(merged, key=lambda k: k[0])[:limit]
    return [Point(measurement, dict(tags), merged[(t, tags)], t) for t, tags in keys]


class InfluxV2Store:
    name = "influx_v2"

    def __init__(
        self, url: str, token: str, org: str, bucket: str,
        retention: str | None = "0s", timeout: float = 5.0,
    ) -> None:
        self.org, self.bucket = org, bucket
        self.retention_s = retention_seconds(retention)
        self._client = InfluxDBClient(url=url, token=token, org=org, timeout=int(timeout * 1000))
        self._write = self._client.write_api(write_options=SYNCHRONOUS)
        self._query = self._client.query_api()

    def setup(self) -> None:
        """Create the bucket (with its retention) when missing; an existing one is left as it is."""
        buckets = self._client.buckets_api()
        if buckets.find_bucket_by_name(self.bucket) is None:
            rules = [BucketRetentionRules(type="expire", every_seconds=self.retention_s)]
            buckets.create_bucket(bucket_name=self.bucket, org=self.org, retention_rules=rules)
            log.info("created InfluxDB bucket %s", self.bucket)

    def ping(self) -> bool:
        try:
            return bool(self._client.ping())
        except Exception:
            return False

    def close(self) -> None:
        self._write.close()
        self._client.close()

    def write_lines(self, lines: list[str]) -> None:
        if not lines:
            return
        try:
            self._write.write(self.bucket, self.org, record="\n".join(lines),
                              write_precision=_NS)
        except ApiException as err:
            reason = _message(err)
            status = int(err.status or 0)
            if status in REJECT_STATUSES:
                raise RejectedBatchError(reason, status) from err
            headers: Any = err.headers or {}
            retry = parse_retry_after(headers.get("Retry-After"))
            raise TransientStoreError(f"InfluxDB answered {status}: {reason}", retry) from err
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise TransientStoreError(f"InfluxDB unreachable: {err}") from err

    def series(self, q: SeriesQuery) -> list[Bucket]:
        records = self._run(series_flux(self.bucket, q))
        return records_to_buckets(records)

    def read_points(
        self,
        measurement: str,
        tags: dict[str, str] | None = None,
        start: float | None = None,
        end: float | None = None,
        limit: int = 10_000,
    ) -> list[Point]:
        records = self._run(read_flux(self.bucket, measurement, tags, start, end, limit))
        return records_to_points(measurement, records, limit)

    def _run(self, flux: str) -> list[dict[str, Any]]:
        try:
            tables = self._query.query(flux, org=self.org)
        except ApiException as err:
            if err.status and err.status < 500 and err.status not in (401, 403, 429):
                raise ValueError(_message(err)) from err
            raise TransientStoreError(f"InfluxDB query failed: {_message(err)}") from err
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise TransientStoreError(f"InfluxDB unreachable: {err}") from err
        return [dict(rec.values) for table in tables for rec in table.records]


def _message(err: ApiException) -> str:
    body = err.body.decode(errors="replace") if isinstance(err.body, bytes) else err.body
    try:
        return str(json.loads(body)["message"])
    except (TypeError, ValueError, KeyError):
        return str(body or err.reason or err.status)
