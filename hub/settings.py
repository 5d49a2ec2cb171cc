"""Typed settings from the `VH_*` environment variables of PROTOCOL §8.

A YAML file named by `VH_CONFIG` may add to them; the environment wins.
Every value is checked at start-up (nothing parsed later may fail); errors name the
variable, say what to fix, and never print a secret (passwords, tokens).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from hub.topics import DEFAULT_ROOT, is_valid_id

BOOTSTRAP_TOKEN_MIN_LEN = 32
# Never shown in an error, a log line or the settings' repr.
SECRET_FIELDS = frozenset({"influx_password", "influx_token", "bootstrap_token"})
# URLs that may carry `user:password@`: shown with the password masked.
URL_FIELDS = frozenset({"mqtt_url", "influx_url", "public_url"})
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
_HHMM = r"(?:[01]\d|2[0-3]):[0-5]\d"
_QUIET_HOURS = re.compile(rf"^{_HHMM}-{_HHMM}$")
_RETENTION = re.compile(r"^(?:INF|\d+[smhdw])$", re.IGNORECASE)


def mask_url(url: str) -> str:
    """`scheme://user:***@host:port/…`: the URL with any password replaced."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rsplit("@", 1)[1]
        user = parts.username or ""
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    except ValueError:
        return "***"  # not even splittable: show nothing of it


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
    mqtt_url: str = Field("mqtt://127.0.0.1:1883", repr=False)
    topic_root: str = DEFAULT_ROOT
    influx_url: str | None = Field(None, repr=False)
    influx_db: str = "villagehub"
    influx_user: str | None = None
    influx_password: str | None = Field(None, repr=False)
    influx_token: str | None = Field(None, repr=False)
    influx_org: str | None = None
    influx_bucket: str | None = None
    data_dir: Path = Path("./data")
    http_host: str = "127.0.0.1"
    http_port: int = Field(8000, ge=1, le=65535)
    bootstrap_token: str | None = Field(None, repr=False)
    tz: str = "Asia/Shanghai"

    # --- the project's own (documented in docs/configuration.md) ---
    township_name: str = "示范乡"
    township_lat: float | None = Field(None, ge=-90, le=90)  # street-light sun times; default: the devices' centre
    township_lon: float | None = Field(None, ge=-180, le=180)
    boundary_geojson: Path | None = None  # the township outline drawn on the wall screen's map
    public_url: str | None = None  # how devices reach the hub over HTTP (broadcast media); default http://host:port
    media_url_allow: str = ""  # comma-separated URL prefixes broadcast media.url may point at (besides the hub)
    mqtt_client_id: str = "villagehub"
    mqtt_protocol: Literal[5, 311] = 5
    mqtt_ca_file: Path | None = None
    mqtt_session_expiry_s: int = Field(7 * 24 * 3600, ge=0)
    # Extra paho clients (`<client id>-cmd<n>`) that publish commands (hub.mqtt.publisher).
    # None: 2 on mqtt://, 0 on mqtts:// (mosquitto.conf's TLS listener forces client id =
    # username, so more connections of the hub user would take each other over).
    mqtt_command_clients: int | None = Field(None, ge=0, le=8)
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
    broadcast_quiet_hours: str = "22:00-06:00"
    broadcast_grace_s: float = Field(600.0, ge=0)
    # village ranking (docs/rankings.md): component=weight pairs, and the alarm acknowledgement limit
    ranking_weights: str = "availability=0.4,alarm_ack=0.2,problems_on_time=0.25,broadcast_delivery=0.15"
    alarm_ack_limit_s: float = Field(1800.0, gt=0, le=7 * 86400)
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

    @field_validator("bootstrap_token", mode="before")
    @classmethod
    def _bootstrap_token(cls, v: Any) -> Any:
        if v is None or (isinstance(v, str) and not v.strip()):
            return None  # empty means unset
        if isinstance(v, str):
            if any(c.isspace() or not c.isprintable() for c in v):
                raise ValueError("must not contain spaces or control characters; "
                                 "make one with `openssl rand -hex 24`")
            if len(v) < BOOTSTRAP_TOKEN_MIN_LEN:
                raise ValueError(f"must be at least {BOOTSTRAP_TOKEN_MIN_LEN} characters (got {len(v)}); "
                                 "make one with `openssl rand -hex 24`")
        return v

    @field_validator("broadcast_quiet_hours")
    @classmethod
    def _quiet_hours(cls, v: str) -> str:
        v = v.strip()
        if not _QUIET_HOURS.match(v):
            raise ValueError("must be HH:MM-HH:MM in 24-hour local time, e.g. 22:00-06:00 "
                             "(equal times: no quiet hours)")
        return v

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, v: str) -> str:
        level = v.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("influx_retention")
    @classmethod
    def _retention(cls, v: str) -> str:
        v = v.strip()
        if not _RETENTION.match(v):
            raise ValueError("must be one number and unit, e.g. 0s (keep forever), 90d, 52w, 720h")
        return v

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        assert v is not None
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL devices can reach, e.g. http://192.168.1.10:8000")
        return v.rstrip("/")

    @field_validator("media_url_allow")
    @classmethod
    def _media_url_allow(cls, v: str) -> str:
        from hub.broadcasts.mediaurl import parse_allow_list

        parse_allow_list(v)  # ValueError names the bad prefix
        return v

    @field_validator("mqtt_ca_file", "boundary_geojson")
    @classmethod
    def _readable_file(cls, v: Path | None) -> Path | None:
        if v is None or str(v) == "":
            return None
        if not v.is_file():
            raise ValueError(f"no such file: {v}")
        if not os.access(v, os.R_OK):
            raise ValueError(f"cannot read {v} (permissions)")
        return v

    @field_validator("mqtt_ca_file")
    @classmethod
    def _ca_file(cls, v: Path | None) -> Path | None:
        if v is not None:
            import ssl

            try:
                ssl.create_default_context(cafile=str(v))
            except (ssl.SSLError, OSError, ValueError) as exc:
                raise ValueError(f"{v} is not a PEM CA certificate ({exc})") from None
        return v

    @field_validator("ranking_weights")
    @classmethod
    def _ranking_weights(cls, v: str) -> str:
        from hub.rankings.scoring import parse_weights

        parse_weights(v)  # ValueError names the bad part
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


def _shown(field: str, value: Any) -> str:
    """` (got …)` for an error: nothing for a secret, a URL with its password masked."""
    if field in SECRET_FIELDS:
        return ""
    if isinstance(value, str) and (field in URL_FIELDS or "://" in value):
        return f" (got {mask_url(value)!r})"
    return f" (got {value!r})"


def _secrets_in(overrides: dict[str, Any]) -> list[str]:
    """Every secret the settings could hold, from the arguments and the environment."""
    found: list[str] = []
    for name in SECRET_FIELDS | URL_FIELDS:
        for value in (overrides.get(name), os.environ.get("VH_" + name.upper())):
            if not isinstance(value, str) or not value:
                continue
            if name in SECRET_FIELDS:
                found.append(value)
            else:
                try:
                    password = urlsplit(value).password
                except ValueError:
                    password = None
                if password:
                    found += [password, unquote(password)]
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _check_config_file() -> None:
    config_file = os.environ.get("VH_CONFIG")
    if not config_file:
        return
    path = Path(config_file)
    if not path.is_file():
        raise SettingsError(f"invalid settings:\n  VH_CONFIG: no such file: {path}")
    try:
        import yaml

        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SettingsError(f"invalid settings:\n  VH_CONFIG: cannot read {path}: {first}") from None
    if doc is not None and not isinstance(doc, dict):
        raise SettingsError(f"invalid settings:\n  VH_CONFIG: {path} must be a mapping of setting: value")


def load_settings(**overrides: Any) -> Settings:
    """Settings from the arguments, then the environment, then `VH_CONFIG`, then the defaults.

    Raises SettingsError naming every bad variable; no secret is ever part of the message.
    """
    secrets = _secrets_in(overrides)
    try:
        _check_config_file()
        return Settings(**overrides)
    except SettingsError as exc:
        raise SettingsError(_scrub(str(exc), secrets)) from None
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = err.get("loc") or ()
            msg = str(err["msg"]).removeprefix("Value error, ")
            if loc:
                field = str(loc[0])
                lines.append(f"  VH_{field.upper()}: {msg}{_shown(field, err.get('input'))}")
            else:  # a whole-model check: its input is every value, so show none
                lines.append(f"  {msg}")
        raise SettingsError(_scrub("invalid settings:\n" + "\n".join(lines), secrets)) from None
