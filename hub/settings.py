"""Typed settings from the `VH_*` environment variables of PROTOCOL §8.

A YAML file named by `VH_CONFIG` may add to them; the environment wins.
Errors at start-up name the variable and say what to fix.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from hub.topics import is_valid_id


class MqttUrl:
    """A parsed `mqtt://user:pass@host:port` or `mqtts://…` URL."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(f"scheme must be mqtt:// or mqtts://, got {parts.scheme or 'none'!r}")
        if not parts.hostname:
            raise ValueError("a host is required, e.g. mqtt://127.0.0.1:1883")
        self.tls = parts.scheme in ("mqtts", "ssl")
        self.host = parts.hostname
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from None
        self.port = port or (8883 if self.tls else 1883)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None

    def __repr__(self) -> str:  # never print the password
        user = f"{self.username}:***@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VH_", extra="ignore", validate_default=True)

    # --- PROTOCOL §8 ---
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    topic_root: str = "vhub/v1"
    influx_url: str | None = None
    influx_db: str = "villagehub"
    influx_user: str | None = None
    influx_password: str | None = None
    influx_token: str | None = None
    influx_org: str | None = None
    influx_bucket: str | None = None
    data_dir: Path = Path("./data")
    http_host: str = "127.0.0.1"
    http_port: int = Field(8000, ge=1, le=65535)
    bootstrap_token: str | None = None
    tz: str = "Asia/Shanghai"

    # --- the project's own (documented in docs/configuration.md) ---
    township_name: str = "示范乡"
    boundary_geojson: Path | None = None  # the township outline drawn on the wall screen's map
    public_url: str | None = None  # how devices reach the hub over HTTP (broadcast media); default http://host:port
    mqtt_client_id: str = "villagehub"
    mqtt_protocol: Literal[5, 311] = 5
    mqtt_ca_file: Path | None = None
    mqtt_session_expiry_s: int = Field(7 * 24 * 3600, ge=0)
    ingest_workers: int = Field(0, ge=0, le=16)
    ingest_queue_size: int = Field(50_000, ge=100)
    write_batch_size: int = Field(5000, ge=1, le=100_000)
    write_flush_s: float = Field(0.2, gt=0, le=1.0)
    write_timeout_s: float = Field(5.0, gt=0)
    influx_retention: str = "0s"
    spool_max_bytes: int = Field(1 << 30, ge=1 << 20)
    heartbeat_timeout_factor: float = Field(2.5, gt=1)
    default_interval_s: float = Field(30.0, gt=0)
    clock_skew_s: float = Field(300.0, gt=0)
    snapshot_max_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    snapshot_max_pixels: int = Field(40_000_000, ge=1)
    broadcast_quiet_hours: str = Field("22:00-06:00", pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$")
    broadcast_grace_s: float = Field(600.0, ge=0)
    metrics_auth: bool = False
    log_level: str = "INFO"

    @field_validator("topic_root")
    @classmethod
    def _topic_root(cls, v: str) -> str:
        v = v.strip("/")
        if not v or any(c in v for c in "#+\0"):
            raise ValueError("must be a topic path without wildcards, e.g. vhub/v1")
        return v

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url(cls, v: str) -> str:
        MqttUrl(v)
        return v

    @field_validator("influx_url")
    @classmethod
    def _influx_url(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        assert v is not None
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) base URL, e.g. http://127.0.0.1:8086")
        return v.rstrip("/")

    @field_validator("tz")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}; use an IANA name such as Asia/Shanghai") from None
        return v

    @field_validator("mqtt_client_id")
    @classmethod
    def _client_id(cls, v: str) -> str:
        if not is_valid_id(v):
            raise ValueError("must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
        return v

    @model_validator(mode="after")
    def _v2_needs_org_bucket(self) -> Settings:
        if self.influx_token:
            if not self.influx_url:
                raise ValueError("VH_INFLUX_TOKEN is set but VH_INFLUX_URL is not: the v2 API needs both")
            if not self.influx_org or not self.influx_bucket:
                raise ValueError("VH_INFLUX_TOKEN needs VH_INFLUX_ORG and VH_INFLUX_BUCKET as well")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("VH_CONFIG")
        if config_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)

    # --- derived ---
    @property
    def mqtt(self) -> MqttUrl:
        return MqttUrl(self.mqtt_url)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    @property
    def store_kind(self) -> Literal["influx_v1", "influx_v2", "sqlite"]:
        if self.influx_url and self.influx_token:
            return "influx_v2"
        return "influx_v1" if self.influx_url else "sqlite"


class SettingsError(Exception):
    """Raised with an operator-readable message naming each bad variable."""


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = err.get("loc") or ()
            name = "VH_" + str(loc[0]).upper() if loc else "settings"
            lines.append(f"  {name}: {err['msg']} (got {err.get('input')!r})")
        raise SettingsError("invalid settings:\n" + "\n".join(lines)) from None
