"""Settings (issue 11 item 9): every value checked at start, errors that never print a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.settings import SettingsError, load_settings

pytestmark = pytest.mark.unit

GOOD_TOKEN = "0123456789abcdef" * 3  # 48 characters, like `openssl rand -hex 24`


@pytest.fixture(autouse=True)
def no_vh_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("VH_"):
            monkeypatch.delenv(key)


def error_of(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SettingsError) as info:
        load_settings()
    return str(info.value)


# --- secrets never appear in an error -------------------------------------------------------

def test_a_bad_mqtt_url_is_reported_without_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    msg = error_of(monkeypatch, VH_MQTT_URL="http://hubuser:S3cretPassw0rd@broker:1883")
    assert "VH_MQTT_URL" in msg
    assert "S3cretPassw0rd" not in msg
    assert "hubuser" in msg  # the rest of the URL stays, to help find the mistake


def test_a_bad_port_in_the_mqtt_url_does_not_print_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    msg = error_of(monkeypatch, VH_MQTT_URL="mqtt://hub:Pa55word-xyz@broker:notaport")
    assert "VH_MQTT_URL" in msg and "Pa55word-xyz" not in msg


def test_an_influx_url_with_credentials_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    msg = error_of(monkeypatch, VH_INFLUX_URL="ftp://admin:InfluxPw-778@db")
    assert "VH_INFLUX_URL" in msg and "InfluxPw-778" not in msg


def test_model_level_errors_do_not_print_the_other_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # VH_INFLUX_TOKEN without VH_INFLUX_URL fails as a whole-model check, whose input is every value.
    msg = error_of(monkeypatch, VH_INFLUX_TOKEN="influx-token-secret-value",
                   VH_INFLUX_PASSWORD="influx-password-secret", VH_BOOTSTRAP_TOKEN=GOOD_TOKEN,
                   VH_MQTT_URL="mqtt://hub:MqttSecret-991@broker:1883")
    assert "VH_INFLUX_TOKEN" in msg
    for secret in ("influx-token-secret-value", "influx-password-secret", GOOD_TOKEN, "MqttSecret-991"):
        assert secret not in msg


def test_a_short_bootstrap_token_is_refused_without_printing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    msg = error_of(monkeypatch, VH_BOOTSTRAP_TOKEN="short-but-secret")
    assert "VH_BOOTSTRAP_TOKEN" in msg
    assert "32" in msg and "openssl rand -hex 24" in msg
    assert "short-but-secret" not in msg


def test_a_31_character_bootstrap_token_is_refused_and_32_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "VH_BOOTSTRAP_TOKEN" in error_of(monkeypatch, VH_BOOTSTRAP_TOKEN="x" * 31)
    monkeypatch.setenv("VH_BOOTSTRAP_TOKEN", "x" * 32)
    assert load_settings().bootstrap_token == "x" * 32


def test_a_bootstrap_token_with_whitespace_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    msg = error_of(monkeypatch, VH_BOOTSTRAP_TOKEN="a" * 20 + " " + "b" * 20)
    assert "VH_BOOTSTRAP_TOKEN" in msg and "a" * 20 not in msg


def test_an_empty_bootstrap_token_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VH_BOOTSTRAP_TOKEN", "")
    assert load_settings().bootstrap_token is None


def test_secrets_are_not_in_the_settings_repr() -> None:
    s = load_settings(mqtt_url="mqtt://hub:ReprSecret-55@broker:1883", bootstrap_token=GOOD_TOKEN,
                      influx_password="influx-pw-in-repr")
    text = repr(s) + str(s)
    for secret in ("ReprSecret-55", GOOD_TOKEN, "influx-pw-in-repr"):
        assert secret not in text


def test_a_secret_echoed_inside_another_variable_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    # An operator pasting the token into the wrong variable: the value is still masked.
    msg = error_of(monkeypatch, VH_BOOTSTRAP_TOKEN=GOOD_TOKEN, VH_HTTP_PORT=GOOD_TOKEN)
    assert "VH_HTTP_PORT" in msg and GOOD_TOKEN not in msg


# --- values that used to pass validation and crash later -------------------------------------

@pytest.mark.parametrize("value", ["25:00-06:00", "22:60-06:00", "22:00-24:00", "2200-0600", "22:00"])
def test_quiet_hours_must_be_real_times(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    msg = error_of(monkeypatch, VH_BROADCAST_QUIET_HOURS=value)
    assert "VH_BROADCAST_QUIET_HOURS" in msg and "HH:MM" in msg


def test_good_quiet_hours_pass_and_build_the_broadcast_service_config(monkeypatch: pytest.MonkeyPatch) -> None:

    monkeypatch.setenv("VH_BROADCAST_QUIET_HOURS", "23:30-05:45")
    s = load_settings()
    qh = s.broadcasts.quiet_hours
    assert (qh.start.hour, qh.start.minute, qh.end.hour, qh.end.minute) == (23, 30, 5, 45)


@pytest.mark.parametrize(("var", "value"), [
    ("VH_LOG_LEVEL", "LOUD"),
    ("VH_INFLUX_RETENTION", "ninety days"),
    ("VH_INFLUX_RETENTION", "1h30m"),
    ("VH_PUBLIC_URL", "hub.example:8000"),
    ("VH_MQTT_CA_FILE", "/nonexistent/ca.crt"),
    ("VH_BOUNDARY_GEOJSON", "/nonexistent/boundary.geojson"),
])
def test_values_used_later_are_checked_at_start(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    assert var in error_of(monkeypatch, **{var: value})


def test_a_missing_config_file_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    msg = error_of(monkeypatch, VH_CONFIG=str(tmp_path / "missing.yaml"))
    assert "VH_CONFIG" in msg and "missing.yaml" in msg


def test_a_broken_config_file_is_an_error_not_a_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("mqtt_url: [unclosed\n")
    assert "VH_CONFIG" in error_of(monkeypatch, VH_CONFIG=str(bad))


def test_log_level_is_normalised_and_retention_forms_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VH_LOG_LEVEL", "debug")
    monkeypatch.setenv("VH_INFLUX_RETENTION", "52w")
    s = load_settings()
    assert s.log_level == "DEBUG" and s.influx.retention == "52w"


def test_every_error_is_listed_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    msg = error_of(monkeypatch, VH_TZ="Mars/Olympus", VH_BROADCAST_QUIET_HOURS="25:00-06:00",
                   VH_BOOTSTRAP_TOKEN="short")
    assert all(v in msg for v in ("VH_TZ", "VH_BROADCAST_QUIET_HOURS", "VH_BOOTSTRAP_TOKEN"))


def test_a_ca_file_that_is_not_a_certificate_is_refused_at_start(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    bad = tmp_path / "ca.crt"
    bad.write_text("not a certificate\n")
    assert "VH_MQTT_CA_FILE" in error_of(monkeypatch, VH_MQTT_CA_FILE=str(bad))


# --- sections: typed fields, the same variable names -------------------------------------------

@pytest.mark.parametrize(("var", "value", "where", "expected"), [
    ("VH_MQTT_CLIENT_ID", "hub-7", ("mqtt", "client_id"), "hub-7"),
    ("VH_MQTT_PROTOCOL", "311", ("mqtt", "protocol"), 311),
    ("VH_MQTT_SESSION_EXPIRY_S", "60", ("mqtt", "session_expiry_s"), 60),
    ("VH_MQTT_COMMAND_CLIENTS", "0", ("mqtt", "command_clients"), 0),
    ("VH_INFLUX_DB", "town", ("influx", "db"), "town"),
    ("VH_HTTP_PORT", "8123", ("http", "port"), 8123),
    ("VH_HTTP_HOST", "0.0.0.0", ("http", "host"), "0.0.0.0"),
    ("VH_METRICS_AUTH", "true", ("http", "metrics_auth"), True),
    ("VH_WRITE_FLUSH_S", "0.05", ("writer", "flush_s"), 0.05),
    ("VH_SPOOL_MAX_BYTES", str(1 << 21), ("writer", "spool_max_bytes"), 1 << 21),
    ("VH_INGEST_WORKERS", "2", ("ingest", "workers"), 2),
    ("VH_CLOCK_SKEW_S", "60", ("devices", "clock_skew_s"), 60.0),
    ("VH_SNAPSHOT_MAX_PIXELS", "1000", ("snapshots", "max_pixels"), 1000),
    ("VH_BROADCAST_GRACE_S", "30", ("broadcasts", "grace_s"), 30.0),
    ("VH_ALARM_ACK_LIMIT_S", "600", ("ranking", "alarm_ack_limit_s"), 600.0),
    ("VH_TOWNSHIP_NAME", "东乡", ("township", "name"), "东乡"),
    ("VH_TOWNSHIP_LAT", "30.5", ("township", "lat"), 30.5),
])
def test_each_variable_keeps_its_name_and_lands_in_its_section(
        monkeypatch: pytest.MonkeyPatch, var: str, value: str, where: tuple[str, str], expected: object) -> None:
    monkeypatch.setenv(var, value)
    section, field = where
    assert getattr(getattr(load_settings(), section), field) == expected


def test_the_mqtt_url_and_quiet_hours_are_typed_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VH_MQTT_URL", "mqtts://hub:UrlSecret-1@broker.example:8884")
    monkeypatch.setenv("VH_BROADCAST_QUIET_HOURS", "21:00-07:30")
    s = load_settings()
    assert (s.mqtt.url.tls, s.mqtt.url.host, s.mqtt.url.port, s.mqtt.url.username) == (True, "broker.example", 8884, "hub")
    assert "UrlSecret-1" not in repr(s.mqtt.url)
    assert (s.broadcasts.quiet_hours.start.hour, s.broadcasts.quiet_hours.end.minute) == (21, 30)


def test_a_section_refuses_a_field_it_does_not_have() -> None:
    from pydantic import ValidationError

    from hub.settings import MqttSettings

    with pytest.raises(ValidationError, match="extra"):
        MqttSettings.model_validate({"url": "mqtt://127.0.0.1:1883", "clientid": "typo"})


def test_a_bad_value_in_a_section_is_named_by_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    msg = error_of(monkeypatch, VH_INGEST_WORKERS="99", VH_SNAPSHOT_MAX_BYTES="12")
    assert "VH_INGEST_WORKERS" in msg and "VH_SNAPSHOT_MAX_BYTES" in msg


def test_the_config_file_keeps_its_flat_names_and_the_environment_wins(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text("http_port: 8111\ninflux_db: from_file\ntownship_name: 西乡\n", encoding="utf-8")
    monkeypatch.setenv("VH_CONFIG", str(config))
    monkeypatch.setenv("VH_INFLUX_DB", "from_env")
    s = load_settings()
    assert (s.http.port, s.influx.db, s.township.name) == (8111, "from_env", "西乡")
    assert {"http_port", "influx_db", "township_name"} <= s.given
