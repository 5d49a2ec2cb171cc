"""Typed settings, in sections, from the `VH_*` environment variables of PROTOCOL §8.

`settings.mqtt`, `.influx`, `.http`, `.writer`, `.ingest`, `.devices`, `.snapshots`,
`.broadcasts`, `.ranking`, `.township` (each a strict model: unknown fields are refused) and a
few top-level values (`data_dir`, `topic_root`, `tz`, `bootstrap_token`, `log_level`).
`ENV` names every variable and where it lands; the names are the operations contract and
do not change with the sections. A YAML file named by `VH_CONFIG` may add to them (keys: the
variable names without `VH_`, lower case, e.g. `mqtt_url: …`); the environment wins, and
`load_settings`' arguments (the same names) win over both.
Every value is checked at start-up (nothing parsed later may fail); errors name the
variable, say what to fix, and never print a secret (passwords, tokens).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from hub.quiethours import QuietHours
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
    """A parsed `mqtt://user:pass@host:port` or `mqtts://…` URL (`raw`: as given)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(f"scheme must be mqtt:// or mqtts://, got {parts.scheme or 'none'!r}")
        if not parts.hostname:
            raise ValueError("a host is required, e.g. mqtt://127.0.0.1:1883")
        self.raw = url
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

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MqttUrl) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(self.raw)




def _mqtt_url(v: Any) -> MqttUrl:
    return v if isinstance(v, MqttUrl) else MqttUrl(str(v))


def _quiet_hours(v: Any) -> QuietHours:
    if isinstance(v, QuietHours):
        return v
    text = str(v).strip()
    if not _QUIET_HOURS.match(text):
        raise ValueError("must be HH:MM-HH:MM in 24-hour local time, e.g. 22:00-06:00 "
                         "(equal times: no quiet hours)")
    return QuietHours.parse(*text.split("-"))


def _weights(v: Any) -> dict[str, float]:
    if isinstance(v, dict):
        return {str(k): float(w) for k, w in v.items()}
    from hub.rankings.scoring import parse_weights

    return parse_weights(str(v))  # ValueError names the bad part


def _readable_file(v: Path | None) -> Path | None:
    if v is None or str(v) == "":
        return None
    if not v.is_file():
        raise ValueError(f"no such file: {v}")
    if not os.access(v, os.R_OK):
        raise ValueError(f"cannot read {v} (permissions)")
    return v


def _http_url(v: str | None, what: str) -> str | None:
    if v in (None, ""):
        return None
    assert v is not None
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(what)
    return v.rstrip("/")


MqttUrlField = Annotated[MqttUrl, BeforeValidator(_mqtt_url)]
QuietHoursField = Annotated[QuietHours, BeforeValidator(_quiet_hours)]
WeightsField = Annotated[dict[str, float], BeforeValidator(_weights)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, validate_default=True)


class MqttSettings(Section):
    url: MqttUrlField = MqttUrl("mqtt://127.0.0.1:1883")
    client_id: str = "villagehub"
    protocol: Literal[5, 311] = 5
    ca_file: Path | None = None
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0)
    # Extra MQTT connections (`<client id>-cmd<n>`) that publish commands (hub.mqtt.publisher:
    # the lean publisher on mqtt://, paho clients on mqtts://).
    # None: 2 on mqtt://, 0 on mqtts:// (mosquitto.conf's TLS listener forces client id =
    # username, so more connections of the hub user would take each other over).
    command_clients: int | None = Field(default=None, ge=0, le=8)

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol(cls, v: Any) -> Any:
        return int(v) if isinstance(v, str) and v.strip() in ("5", "311") else v  # from the environment

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, v: str) -> str:
        if not is_valid_id(v):
            raise ValueError("must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
        return v

    @field_validator("ca_file")
    @classmethod
    def _ca_file(cls, v: Path | None) -> Path | None:
        v = _readable_file(v)
        if v is not None:
            import ssl

            try:
                ssl.create_default_context(cafile=str(v))
            except (ssl.SSLError, OSError, ValueError) as exc:
                raise ValueError(f"{v} is not a PEM CA certificate ({exc})") from None
        return v


class InfluxSettings(Section):
    url: str | None = Field(default=None, repr=False)  # unset: the embedded store in the data directory
    db: str = "villagehub"
    user: str | None = None
    password: str | None = Field(default=None, repr=False)
    token: str | None = Field(default=None, repr=False)  # set: the v2 API
    org: str | None = None
    bucket: str | None = None
    retention: str = "0s"

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return _http_url(v, "must be an http(s) base URL, e.g. http://127.0.0.1:8086")

    @field_validator("retention")
    @classmethod
    def _retention(cls, v: str) -> str:
        v = v.strip()
        if not _RETENTION.match(v):
            raise ValueError("must be one number and unit, e.g. 0s (keep forever), 90d, 52w, 720h")
        return v

    @model_validator(mode="after")
    def _v2_needs_org_bucket(self) -> InfluxSettings:
        if self.token:
            if not self.url:
                raise ValueError("VH_INFLUX_TOKEN is set but VH_INFLUX_URL is not: the v2 API needs both")
            if not self.org or not self.bucket:
                raise ValueError("VH_INFLUX_TOKEN needs VH_INFLUX_ORG and VH_INFLUX_BUCKET as well")
        return self

    @property
    def store_kind(self) -> Literal["influx_v1", "influx_v2", "sqlite"]:
        if self.url and self.token:
            return "influx_v2"
        return "influx_v1" if self.url else "sqlite"


class HttpSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str | None = None  # how devices reach the hub over HTTP (broadcast media); default http://host:port
    metrics_auth: bool = False

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, v: str | None) -> str | None:
        return _http_url(v, "must be an http(s) URL devices can reach, e.g. http://192.168.1.10:8000")


class WriterSettings(Section):
    batch_size: int = Field(default=5000, ge=1, le=100_000)
    flush_s: float = Field(default=0.2, gt=0, le=1.0)
    timeout_s: float = Field(default=5.0, gt=0)
    spool_max_bytes: int = Field(default=1 << 30, ge=1 << 20)


class IngestSettings(Section):
    workers: int = Field(default=0, ge=0, le=16)
    queue_size: int = Field(default=50_000, ge=100)


class DeviceSettings(Section):
    heartbeat_timeout_factor: float = Field(default=2.5, gt=1)
    default_interval_s: float = Field(default=30.0, gt=0)
    clock_skew_s: float = Field(default=300.0, gt=0)


class SnapshotSettings(Section):
    max_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_pixels: int = Field(default=40_000_000, ge=1)


class BroadcastSettings(Section):
    quiet_hours: QuietHoursField = QuietHours()
    grace_s: float = Field(default=600.0, ge=0)
    media_url_allow: str = ""  # comma-separated URL prefixes broadcast media.url may point at (besides the hub)

    @field_validator("media_url_allow")
    @classmethod
    def _media_url_allow(cls, v: str) -> str:
        from hub.mediaurl import parse_allow_list

        parse_allow_list(v)  # ValueError names the bad prefix
        return v


class RankingSettings(Section):
    # village ranking (docs/rankings.md): component=weight pairs, and the alarm acknowledgement limit
    weights: WeightsField = Field(
        default_factory=lambda: _weights("availability=0.4,alarm_ack=0.2,problems_on_time=0.25,"
                                         "broadcast_delivery=0.15"))
    alarm_ack_limit_s: float = Field(default=1800.0, gt=0, le=7 * 86400)


class TownshipSettings(Section):
    name: str = "示范乡"
    lat: float | None = Field(default=None, ge=-90, le=90)  # street-light sun times; default: the devices' centre
    lon: float | None = Field(default=None, ge=-180, le=180)
    boundary_geojson: Path | None = None  # the township outline drawn on the wall screen's map

    @field_validator("boundary_geojson")
    @classmethod
    def _boundary(cls, v: Path | None) -> Path | None:
        return _readable_file(v)


# Every variable (PROTOCOL §8, docs/configuration.md): VH_<NAME> → (section, field); section
# None: a top-level value. `load_settings`' arguments and `VH_CONFIG` keys are the lower-case names.
ENV: dict[str, tuple[str | None, str]] = {
    "mqtt_url": ("mqtt", "url"), "mqtt_client_id": ("mqtt", "client_id"),
    "mqtt_protocol": ("mqtt", "protocol"), "mqtt_ca_file": ("mqtt", "ca_file"),
    "mqtt_session_expiry_s": ("mqtt", "session_expiry_s"), "mqtt_command_clients": ("mqtt", "command_clients"),
    "influx_url": ("influx", "url"), "influx_db": ("influx", "db"), "influx_user": ("influx", "user"),
    "influx_password": ("influx", "password"), "influx_token": ("influx", "token"),
    "influx_org": ("influx", "org"), "influx_bucket": ("influx", "bucket"),
    "influx_retention": ("influx", "retention"),
    "http_host": ("http", "host"), "http_port": ("http", "port"), "public_url": ("http", "public_url"),
    "metrics_auth": ("http", "metrics_auth"),
    "write_batch_size": ("writer", "batch_size"), "write_flush_s": ("writer", "flush_s"),
    "write_timeout_s": ("writer", "timeout_s"), "spool_max_bytes": ("writer", "spool_max_bytes"),
    "ingest_workers": ("ingest", "workers"), "ingest_queue_size": ("ingest", "queue_size"),
    "heartbeat_timeout_factor": ("devices", "heartbeat_timeout_factor"),
    "default_interval_s": ("devices", "default_interval_s"), "clock_skew_s": ("devices", "clock_skew_s"),
    "snapshot_max_bytes": ("snapshots", "max_bytes"), "snapshot_max_pixels": ("snapshots", "max_pixels"),
    "broadcast_quiet_hours": ("broadcasts", "quiet_hours"), "broadcast_grace_s": ("broadcasts", "grace_s"),
    "media_url_allow": ("broadcasts", "media_url_allow"),
    "ranking_weights": ("ranking", "weights"), "alarm_ack_limit_s": ("ranking", "alarm_ack_limit_s"),
    "township_name": ("township", "name"), "township_lat": ("township", "lat"),
    "township_lon": ("township", "lon"), "boundary_geojson": ("township", "boundary_geojson"),
    "topic_root": (None, "topic_root"), "data_dir": (None, "data_dir"), "tz": (None, "tz"),
    "bootstrap_token": (None, "bootstrap_token"), "log_level": (None, "log_level"),
}
_NAME_OF = {place: name for name, place in ENV.items()}


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)

    mqtt: MqttSettings = MqttSettings()
    influx: InfluxSettings = InfluxSettings()
    http: HttpSettings = HttpSettings()
    writer: WriterSettings = WriterSettings()
    ingest: IngestSettings = IngestSettings()
    devices: DeviceSettings = DeviceSettings()
    snapshots: SnapshotSettings = SnapshotSettings()
    broadcasts: BroadcastSettings = BroadcastSettings()
    ranking: RankingSettings = RankingSettings()
    township: TownshipSettings = TownshipSettings()
    topic_root: str = DEFAULT_ROOT
    data_dir: Path = Path("./data")
    tz: str = "Asia/Shanghai"
    bootstrap_token: str | None = Field(default=None, repr=False)
    log_level: str = "INFO"
    _given: frozenset[str] = PrivateAttr(default=frozenset())

    @field_validator("topic_root")
    @classmethod
    def _topic_root(cls, v: str) -> str:
        v = v.strip("/")
        if not v or any(c in v for c in "#+\0"):
            raise ValueError("must be a topic path without wildcards, e.g. vhub/v1")
        return v

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

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, v: str) -> str:
        level = v.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return level

    # --- derived ---
    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    @property
    def given(self) -> frozenset[str]:
        """The names (`ENV` keys) the operator set: an argument, the environment or `VH_CONFIG`."""
        return self._given


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


def _config_file() -> dict[str, Any]:
    """The `VH_CONFIG` YAML mapping (empty without one)."""
    config_file = os.environ.get("VH_CONFIG")
    if not config_file:
        return {}
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
    return {str(k).lower(): v for k, v in (doc or {}).items()}


def _from_environment() -> dict[str, str]:
    """The `VH_*` variables `ENV` names (matched without regard to case, as before sections)."""
    env = {k.upper(): v for k, v in os.environ.items() if k.upper().startswith("VH_")}
    return {name: env["VH_" + name.upper()] for name in ENV if "VH_" + name.upper() in env}


def _nested(flat: dict[str, Any]) -> dict[str, Any]:
    """`{name: value}` (the `ENV` names; others are ignored, as before) → the sections' shape."""
    out: dict[str, Any] = {}
    for name, value in flat.items():
        place = ENV.get(name)
        if place is None:
            continue
        section, field = place
        if section is None:
            out[field] = value
        else:
            out.setdefault(section, {})[field] = value
    return out


def _variable(loc: tuple[Any, ...]) -> str | None:
    """`VH_…` for an error's location; None for a whole-section check."""
    if len(loc) >= 2 and (str(loc[0]), str(loc[1])) in _NAME_OF:
        return _NAME_OF[(str(loc[0]), str(loc[1]))]
    if loc and (None, str(loc[0])) in _NAME_OF:
        return _NAME_OF[(None, str(loc[0]))]
    return None


def load_settings(**overrides: Any) -> Settings:
    """Settings from the arguments, then the environment, then `VH_CONFIG`, then the defaults.

    Arguments and `VH_CONFIG` keys are the `ENV` names (`mqtt_url=…`, `http_port=…`).
    Raises SettingsError naming every bad variable; no secret is ever part of the message.
    """
    secrets = _secrets_in(overrides)
    try:
        flat = {**_config_file(), **_from_environment(), **overrides}
        settings = Settings.model_validate(_nested(flat))
    except SettingsError as exc:
        raise SettingsError(_scrub(str(exc), secrets)) from None
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = tuple(err.get("loc") or ())
            msg = str(err["msg"]).removeprefix("Value error, ")
            name = _variable(loc)
            if name is not None:
                lines.append(f"  VH_{name.upper()}: {msg}{_shown(name, err.get('input'))}")
            else:  # a whole-section check: its input is every value of it, so show none
                lines.append(f"  {msg}")
        raise SettingsError(_scrub("invalid settings:\n" + "\n".join(lines), secrets)) from None
    settings._given = frozenset(k for k in flat if k in ENV)
    return settings
