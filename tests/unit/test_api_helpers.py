"""Pure helpers of the API's security rules (issue 11): stream URL redaction, CSV cells, media URLs."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.api.redact import redact_stream_url, redact_urls
from hub.csvsafe import escape_cell, unescape_cell
from hub.mediaurl import media_url_error, parse_allow_list

pytestmark = pytest.mark.unit


# --------------------------------------------------------------------------- stream URLs


@pytest.mark.parametrize(("url", "bare"), [
    ("rtsp://admin:s3cret@10.0.0.5:554/live", "rtsp://10.0.0.5:554/live"),
    ("rtsp://admin@10.0.0.5/live", "rtsp://10.0.0.5/live"),
    ("RTSPS://u:p@cam.example/x?y=1#z", "RTSPS://cam.example/x?y=1#z"),
    ("rtsp://u:p@ss@10.0.0.5/live", "rtsp://10.0.0.5/live"),          # an unencoded @ in the password
    ("rtsp://u:p%40ss@[fe80::1]:554/live", "rtsp://[fe80::1]:554/live"),
    ("http://u:p@cam", "http://cam"),
    ("rtsp://10.0.0.5:554/live", "rtsp://10.0.0.5:554/live"),        # nothing to strip
    ("rtsp://10.0.0.5/live@2x", "rtsp://10.0.0.5/live@2x"),          # an @ in the path is not userinfo
    ("http://cam/?who=a@b", "http://cam/?who=a@b"),
    ("", ""),
])
def test_redact_stream_url_strips_userinfo_only(url: str, bare: str) -> None:
    assert redact_stream_url(url) == bare


def test_redact_stream_url_keeps_none() -> None:
    assert redact_stream_url(None) is None


@given(user=st.text("abcdefghij:%-._~!$&'()*+,;=", min_size=1, max_size=20),
       host=st.from_regex(r"[a-z]{1,10}(\.[a-z]{1,5}){0,2}(:[0-9]{1,5})?", fullmatch=True),
       path=st.from_regex(r"(/[a-zA-Z0-9@._-]{0,10}){0,3}", fullmatch=True))
def test_redact_stream_url_never_leaves_the_userinfo(user: str, host: str, path: str) -> None:
    out = redact_stream_url(f"rtsp://{user}@{host}{path}")
    assert out == f"rtsp://{host}{path}"


def test_redact_urls_walks_events_and_json_text() -> None:
    event: dict[str, Any] = {"type": "device_event", "ts": 1.0, "data": {
        "stream_url": "rtsp://a:b@h/x", "list": ["http://c:d@h2", 3, None],
        "detail": '{"url": "rtsp://e:f@h3/y", "n": 1}', "plain": "no url here @ all"}}
    out = redact_urls(event)
    assert out["data"]["stream_url"] == "rtsp://h/x"
    assert out["data"]["list"] == ["http://h2", 3, None]
    assert out["data"]["detail"] == '{"url": "rtsp://h3/y", "n": 1}'
    assert out["data"]["plain"] == "no url here @ all"
    assert event["data"]["stream_url"] == "rtsp://a:b@h/x"  # the shared event is not changed


def test_redact_urls_returns_the_same_object_when_nothing_needs_redacting() -> None:
    event = {"type": "presence", "data": {"device": "cam-1", "status": "online"}}
    assert redact_urls(event) is event


# --------------------------------------------------------------------------- CSV cells


@pytest.mark.parametrize(("value", "cell"), [
    ("=SUM(A1)", "'=SUM(A1)"), ("+cmd", "'+cmd"), ("-cmd", "'-cmd"), ("@SUM(1)", "'@SUM(1)"),
    ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("'=x", "''=x"),
    ("-7", "-7"), ("-114.25", "-114.25"), ("+3", "+3"), ("1e-3", "1e-3"),
    ("李家村", "李家村"), ("a=b", "a=b"), ("", ""), ("'plain", "'plain"),
])
def test_escape_cell_defuses_formula_starts(value: str, cell: str) -> None:
    assert escape_cell(value) == cell


@given(st.text(max_size=30))
def test_unescape_cell_inverts_escape_cell(value: str) -> None:
    assert unescape_cell(escape_cell(value)) == value


@given(st.text(max_size=30))
def test_an_escaped_cell_never_starts_a_formula(value: str) -> None:
    cell = escape_cell(value)
    if cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
        float(cell)  # only a plain number may start with + or -


# --------------------------------------------------------------------------- media URLs

HUB = "http://hub.example:8000"
SHA = "a" * 64
ALLOW = parse_allow_list("https://cdn.example.org/audio/, http://10.1.2.3:8080")


@pytest.mark.parametrize("url", [
    f"{HUB}/media/{SHA}", f"{HUB}/media/{SHA.upper()}".replace(SHA.upper(), SHA),
    "https://cdn.example.org/audio/a.mp3", "https://CDN.example.org/audio/x/y.mp3",
    "http://10.1.2.3:8080/anything.mp3", "http://10.1.2.3:8080/",
])
def test_media_url_of_the_hub_or_the_allow_list_is_fine(url: str) -> None:
    assert media_url_error(url, SHA, HUB, ALLOW) is None


@pytest.mark.parametrize("url", [
    "http://evil.example/a.mp3",
    f"{HUB}/media/{'b' * 64}", f"{HUB}/other/{SHA}", f"{HUB}/media/{SHA}/x", f"https://hub.example:8000/media/{SHA}",
    f"http://hub.example:8001/media/{SHA}",
    "https://cdn.example.org.evil.example/audio/a.mp3", "https://cdn.example.org/audiox/a.mp3",
    "https://cdn.example.org/audio", "https://cdn.example.org/audio/../x.mp3",
    "https://cdn.example.org/audio/%2E%2E/x.mp3", "https://cdn.example.org/audio/a%2fb/../../x",
    "https://u:p@cdn.example.org/audio/a.mp3", "http://cdn.example.org/audio/a.mp3",
    "http://10.1.2.3:80/a.mp3", "http://10.1.2.30:8080/a.mp3",
])
def test_media_url_elsewhere_is_refused_with_a_reason(url: str) -> None:
    reason = media_url_error(url, SHA, HUB, ALLOW)
    assert reason and "VH_MEDIA_URL_ALLOW" in reason


def test_with_no_allow_list_only_the_hubs_own_media_is_fine() -> None:
    assert media_url_error(f"{HUB}/media/{SHA}", SHA, HUB, ()) is None
    assert media_url_error("https://cdn.example.org/audio/a.mp3", SHA, HUB, ()) is not None


@pytest.mark.parametrize("bad", ["cdn.example.org", "ftp://x/", "https://", "https://u:p@x/"])
def test_allow_list_entries_must_be_http_urls(bad: str) -> None:
    with pytest.raises(ValueError, match="VH_MEDIA_URL_ALLOW"):
        parse_allow_list(bad)
