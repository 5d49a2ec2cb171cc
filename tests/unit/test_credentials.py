"""Per-device broker credentials: hashes, files, the hashed record and the CLI (no servers)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hub.clock import ManualClock, SystemClock
from hub.security.acl import render_acl
from hub.security.cli import app
from hub.security.credentials import (
    CredentialError,
    CredentialStore,
    check_username,
    write_secret_file,
)
from hub.security.passwords import (
    PasswordEntry,
    generate_password,
    hash_password,
    parse_password_file,
    render_password_file,
    verify_password,
)

pytestmark = pytest.mark.unit

BAD_IDS = {
    "hash": "#",
    "plus": "+",
    "slash": "cam/001",
    "nul": "cam\x00001",
    "space": "cam 001",
    "newline": "cam001\n",
    "tab": "cam\t001",
    "empty": "",
    "leading-dash": "-cam",
    "too-long": "c" * 65,
    "wildcard-inside": "cam#1",
    "plus-inside": "cam+1",
    "percent": "cam%u",
    "colon": "cam:1",
    "non-ascii": "摄像头1",
}


# --------------------------------------------------------------------------- hashes


def test_hash_has_mosquitto_2_pbkdf2_sha512_format() -> None:
    encoded = hash_password("s3cret")
    _, tag, iterations, salt, digest = encoded.split("$")
    assert (tag, iterations) == ("7", "101")
    assert len(salt) == 16 and len(digest) == 88  # base64 of 12 and 64 bytes


def test_hash_matches_a_known_vector() -> None:
    # Computed independently: PBKDF2-HMAC-SHA512("s3cret", b"0123456789ab", 101, 64).
    import base64
    import hashlib

    want = base64.b64encode(hashlib.pbkdf2_hmac("sha512", b"s3cret", b"0123456789ab", 101, 64)).decode()
    assert hash_password("s3cret", salt=b"0123456789ab") == f"$7$101$MDEyMzQ1Njc4OWFi${want}"


@pytest.mark.parametrize("iterations", [1, 101, 1000])
def test_verify_accepts_the_right_password_and_refuses_others(iterations: int) -> None:
    encoded = hash_password("right", iterations=iterations)
    assert verify_password("right", encoded)
    assert not verify_password("wrong", encoded)
    assert not verify_password("", encoded)


def test_every_hash_gets_its_own_salt() -> None:
    assert hash_password("same") != hash_password("same")


@pytest.mark.parametrize(
    "encoded", ["", "plain", "$7$abc$AAAA$AAAA", "$7$101$!!!$AAAA", "$9$1$AA$AA", "$7$0$AAAA$AAAA"]
)
def test_verify_refuses_malformed_hashes_without_raising(encoded: str) -> None:
    assert not verify_password("x", encoded)


def test_verifier_reads_a_file_made_by_mosquitto_passwd(tmp_path: Path) -> None:
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.skip("mosquitto_passwd not installed (apt-get install mosquitto)")
    pwfile = tmp_path / "passwd"
    subprocess.run([tool, "-c", "-b", str(pwfile), "cam-001", "pw-one"], check=True)
    subprocess.run([tool, "-b", str(pwfile), "spk-002", "pw-two"], check=True)
    subprocess.run([tool, "-H", "sha512", "-b", str(pwfile), "old-003", "pw-three"], check=True)
    entries = {e.username: e.hash for e in parse_password_file(pwfile.read_text())}
    assert entries["cam-001"].startswith("$7$") and entries["old-003"].startswith("$6$")
    assert verify_password("pw-one", entries["cam-001"])
    assert verify_password("pw-two", entries["spk-002"])
    assert verify_password("pw-three", entries["old-003"])
    assert not verify_password("pw-two", entries["cam-001"])


def test_generated_passwords_are_long_random_and_url_safe() -> None:
    passwords = {generate_password() for _ in range(200)}
    assert len(passwords) == 200
    for p in passwords:
        assert len(p) >= 32 and all(c.isalnum() or c in "-_" for c in p)
    with pytest.raises(ValueError):
        generate_password(8)


def test_password_file_round_trips_sorted_and_skips_comments() -> None:
    text = render_password_file([PasswordEntry("b", "$7$1$x$y"), PasswordEntry("a", "$7$1$u$v")])
    assert text == "a:$7$1$u$v\nb:$7$1$x$y\n"
    assert parse_password_file("# comment\n\n" + text) == [
        PasswordEntry("a", "$7$1$u$v"), PasswordEntry("b", "$7$1$x$y")
    ]
    with pytest.raises(ValueError, match="line 2"):
        parse_password_file("a:x\nno-colon\n")
    with pytest.raises(ValueError):
        render_password_file([PasswordEntry("a:b", "x")])


# --------------------------------------------------------------------------- ACL


def test_acl_lets_a_device_write_its_five_channels_and_read_its_cmd_and_hub_status() -> None:
    lines = [line for line in render_acl("vhub/v1", ["villagehub"]).splitlines() if line and not line.startswith("#")]
    assert lines == [
        "pattern write vhub/v1/dev/%u/status",
        "pattern write vhub/v1/dev/%u/heartbeat",
        "pattern write vhub/v1/dev/%u/snapshot",
        "pattern write vhub/v1/dev/%u/event",
        "pattern write vhub/v1/dev/%u/ack",
        "pattern read vhub/v1/dev/%u/cmd",
        "pattern read vhub/v1/hub/status",
        "user villagehub",
        "topic readwrite vhub/v1/#",
        "topic read $SYS/#",
    ]


def test_acl_follows_a_configured_topic_root() -> None:
    assert "pattern write site7/v1/dev/%u/heartbeat" in render_acl("/site7/v1/", [])


@pytest.mark.parametrize("root", ["", "vhub/#", "vhub/+/v1", "vhub/%u", "vh ub", "a\nuser evil"])
def test_acl_refuses_a_topic_root_with_wildcards_or_substitutions(root: str) -> None:
    with pytest.raises(ValueError):
        render_acl(root, [])


def test_acl_refuses_a_hub_user_that_is_not_a_valid_id() -> None:
    with pytest.raises(ValueError):
        render_acl("vhub/v1", ["hub\ntopic readwrite #"])


# --------------------------------------------------------------------------- ids (item 3)


@pytest.mark.parametrize("bad", list(BAD_IDS.values()), ids=list(BAD_IDS))
def test_ids_with_wildcards_slashes_blanks_or_control_characters_are_refused(bad: str, tmp_path: Path) -> None:
    with pytest.raises(CredentialError):
        check_username(bad)
    store = CredentialStore(tmp_path / "credentials.db", SystemClock())
    with pytest.raises(CredentialError):
        store.issue(bad)
    assert store.records() == []


@pytest.mark.parametrize("good", ["cam-001", "SPK_02", "a", "9" * 64])
def test_valid_ids_are_accepted(good: str) -> None:
    assert check_username(good) == good


# --------------------------------------------------------------------------- the hashed record


@pytest.fixture
def store(tmp_path: Path) -> CredentialStore:
    return CredentialStore(tmp_path / "data" / "credentials.db", ManualClock(1_764_400_000.0))


def _hash_of(store: CredentialStore, username: str) -> str | None:
    return {e.username: e.hash for e in store.active_entries()}.get(username)


def test_issued_password_is_stored_only_as_a_hash(store: CredentialStore) -> None:
    cred = store.issue("cam-001")
    encoded = _hash_of(store, "cam-001")
    assert encoded is not None and verify_password(cred.password, encoded)
    assert cred.password.encode() not in store.path.read_bytes()
    assert "password=***" in repr(cred) and cred.password not in repr(cred)
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600


def test_issuing_twice_is_refused_and_says_rotate(store: CredentialStore) -> None:
    store.issue("cam-001")
    with pytest.raises(CredentialError, match="rotate"):
        store.issue("cam-001")


def test_rotate_replaces_the_hash_so_the_old_password_stops_verifying(store: CredentialStore) -> None:
    old = store.issue("cam-001").password
    new = store.rotate("cam-001").password
    encoded = _hash_of(store, "cam-001")
    assert encoded is not None
    assert verify_password(new, encoded) and not verify_password(old, encoded)


def test_rotate_of_an_unknown_or_revoked_user_is_refused(store: CredentialStore) -> None:
    with pytest.raises(CredentialError, match="issue"):
        store.rotate("cam-404")
    store.issue("cam-001")
    store.revoke("cam-001")
    with pytest.raises(CredentialError):
        store.rotate("cam-001")


def test_revoke_removes_the_user_from_the_password_file_and_keeps_the_record(
    store: CredentialStore, tmp_path: Path
) -> None:
    store.issue("cam-001")
    store.issue("spk-002")
    clock = store.clock
    assert isinstance(clock, ManualClock)
    clock.advance(60)
    assert store.revoke("cam-001")
    assert not store.revoke("cam-001")  # already revoked
    store.write_files(tmp_path / "passwd", tmp_path / "acl", group=None)
    assert [e.username for e in parse_password_file((tmp_path / "passwd").read_text())] == ["spk-002"]
    rec = {r.username: r for r in store.records()}["cam-001"]
    assert not rec.active and rec.revoked_at == 1_764_400_060.0


def test_a_revoked_device_can_be_issued_a_new_credential(store: CredentialStore) -> None:
    old = store.issue("cam-001").password
    store.revoke("cam-001")
    new = store.issue("cam-001").password
    encoded = _hash_of(store, "cam-001")
    assert encoded is not None and verify_password(new, encoded) and not verify_password(old, encoded)


def test_hub_users_get_the_read_write_acl_section(store: CredentialStore, tmp_path: Path) -> None:
    store.issue("villagehub", "hub")
    store.issue("cam-001")
    with pytest.raises(CredentialError, match="hub user"):
        store.revoke("villagehub") and store.issue("villagehub", "device")
    store.write_files(tmp_path / "passwd", tmp_path / "acl", topic_root="vhub/v1", group=None)
    acl = (tmp_path / "acl").read_text()
    assert "user villagehub" not in acl  # revoked above
    store.issue("villagehub", "hub")
    store.write_files(tmp_path / "passwd", tmp_path / "acl", group=None)
    acl = (tmp_path / "acl").read_text()
    assert "user villagehub\ntopic readwrite vhub/v1/#" in acl and "user cam-001" not in acl


def test_written_files_are_0640_and_replaced_whole(store: CredentialStore, tmp_path: Path) -> None:
    store.issue("cam-001")
    (tmp_path / "passwd").write_text("stale:line\n")
    store.write_files(tmp_path / "passwd", tmp_path / "acl", group=None)
    for name in ("passwd", "acl"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o640
    assert "stale" not in (tmp_path / "passwd").read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_secret_file_is_0600_and_never_overwritten(store: CredentialStore, tmp_path: Path) -> None:
    cred = store.issue("cam-001")
    out = tmp_path / "secrets.csv"
    assert write_secret_file(out, [cred]) == 1
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert out.read_text() == f"username,password,role\ncam-001,{cred.password},device\n"
    with pytest.raises(CredentialError, match="exists"):
        write_secret_file(out, [cred])


# --------------------------------------------------------------------------- CLI


runner = CliRunner()


def _cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["credentials", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize("bad", ["#", "+", "cam/001", "cam\x00001", "cam 001"], ids=["hash", "plus", "slash", "nul", "space"])
def test_cli_refuses_invalid_ids_and_issues_nothing(bad: str, tmp_path: Path) -> None:
    code, output = _cli("issue", "cam-ok", bad, "--data-dir", str(tmp_path))
    assert code == 2 and "invalid id" in output
    assert CredentialStore.in_data_dir(tmp_path, SystemClock()).records() == []


def test_cli_refuses_invalid_ids_in_an_ids_file(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("cam-001\n# a comment\ncam/+\n")
    code, output = _cli("issue", "--ids-file", str(ids), "--data-dir", str(tmp_path))
    assert code == 2 and "cam/+" in output
    assert CredentialStore.in_data_dir(tmp_path, SystemClock()).records() == []


def test_cli_issue_shows_each_password_once_and_writes_the_broker_files(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("cam-001\nspk-002  # the school's speaker\n")
    pw, acl = tmp_path / "passwd", tmp_path / "acl"
    code, output = _cli(
        "issue", "--ids-file", str(ids), "--data-dir", str(tmp_path),
        "--password-file", str(pw), "--acl-file", str(acl), "--group", "",
    )
    assert code == 0, output
    printed = dict(line.split("\t")[:2] for line in output.splitlines() if "\t" in line and "password" not in line)
    assert set(printed) == {"cam-001", "spk-002"}
    hashes = {e.username: e.hash for e in parse_password_file(pw.read_text())}
    assert all(verify_password(printed[u], hashes[u]) for u in printed)
    assert "pattern read vhub/v1/dev/%u/cmd" in acl.read_text()
    code, listed = _cli("list", "--data-dir", str(tmp_path))
    assert code == 0 and "cam-001" in listed and printed["cam-001"] not in listed


def test_cli_out_file_gets_the_passwords_and_the_terminal_does_not(tmp_path: Path) -> None:
    out = tmp_path / "provision.csv"
    code, output = _cli("issue", "cam-001", "--data-dir", str(tmp_path), "--out", str(out))
    assert code == 0, output
    password = out.read_text().splitlines()[1].split(",")[1]
    assert password not in output
    code, output = _cli("rotate", "cam-001", "--data-dir", str(tmp_path), "--out", str(out))
    assert code == 2 and "exists" in output


def test_cli_revoke_then_list_shows_revoked(tmp_path: Path) -> None:
    _cli("issue", "cam-001", "--data-dir", str(tmp_path))
    code, output = _cli("revoke", "cam-001", "--data-dir", str(tmp_path))
    assert code == 0 and "revoked" in output
    code, output = _cli("list", "--data-dir", str(tmp_path))
    assert "revoked" in output


def test_cli_issue_from_the_registry_covers_registered_devices_without_a_credential(tmp_path: Path) -> None:
    from hub.registry import Device, Registry

    with Registry(tmp_path / "registry.db") as registry:
        registry.upsert_device(Device("cam-001", "camera", "村口"))
        registry.upsert_device(Device("spk-002", "speaker", "学校"))
    _cli("issue", "cam-001", "--data-dir", str(tmp_path))
    code, output = _cli("issue", "--from-registry", "--data-dir", str(tmp_path))
    assert code == 0, output
    assert "spk-002\t" in output and "cam-001\t" not in output


def test_cli_reload_sends_sighup_to_the_pid_in_the_pidfile(tmp_path: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        pidfile = tmp_path / "mosquitto.pid"
        pidfile.write_text(f"{sleeper.pid}\n")
        _cli("issue", "cam-001", "--data-dir", str(tmp_path))
        code, output = _cli(
            "write-files", "--data-dir", str(tmp_path), "--password-file", str(tmp_path / "p"),
            "--acl-file", str(tmp_path / "a"), "--group", "", "--reload-pidfile", str(pidfile),
        )
        assert code == 0, output
        assert sleeper.wait(5) == -1  # SIGHUP's default action ends `sleep`
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()


# --------------------------------------------------------------------------- the same ids, elsewhere (issue 7 item 3)


@pytest.mark.parametrize("bad", ["#", "+", "cam\x00001", "cam 001", "cam\n", "-cam", "c" * 65], ids=[
    "hash", "plus", "nul", "space", "newline", "leading-dash", "too-long"])
def test_a_topic_whose_device_segment_is_not_a_valid_id_has_no_device(bad: str) -> None:
    from hub.topics import Topics

    assert Topics("vhub/v1").parse(f"vhub/v1/dev/{bad}/heartbeat") is None


def test_a_topic_with_a_slash_in_the_id_position_has_no_device() -> None:
    from hub.topics import Topics

    assert Topics("vhub/v1").parse("vhub/v1/dev/cam/001/heartbeat") is None


@pytest.mark.parametrize("bad", ["#", "+", "cam/001", "cam\x00001", "cam 001"], ids=["hash", "plus", "slash", "nul", "space"])
def test_the_registry_refuses_the_same_invalid_ids(bad: str, tmp_path: Path) -> None:
    from hub.registry import Device, Registry, RegistryError

    with Registry(tmp_path / "registry.db") as registry, pytest.raises(RegistryError):
        registry.upsert_device(Device(bad, "camera", "x"))


def test_files_can_be_given_to_a_numeric_group(store: CredentialStore, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("changing a file's group to an arbitrary gid needs root")
    store.issue("cam-001")
    store.write_files(tmp_path / "passwd", tmp_path / "acl", group="1883")  # eclipse-mosquitto's gid
    assert os.stat(tmp_path / "passwd").st_gid == 1883


def test_cli_check_reports_devices_without_credentials_and_credentials_without_devices(tmp_path: Path) -> None:
    from hub.registry import Device, Registry

    with Registry(tmp_path / "registry.db") as registry:
        registry.upsert_device(Device("cam-001", "camera", "村口"))
        registry.upsert_device(Device("spk-002", "speaker", "学校"))
    _cli("issue", "cam-001", "old-cam-9", "--data-dir", str(tmp_path))
    _cli("issue", "--role", "hub", "villagehub", "--data-dir", str(tmp_path))
    code, output = _cli("check", "--data-dir", str(tmp_path))
    assert code == 1
    assert "without a credential (1): spk-002" in output
    assert "credential but not registered (1): old-cam-9" in output  # the hub user is not a device
    _cli("issue", "--from-registry", "--data-dir", str(tmp_path))
    _cli("revoke", "old-cam-9", "--data-dir", str(tmp_path))
    code, output = _cli("check", "--data-dir", str(tmp_path))
    assert code == 0 and "agree" in output


def test_cli_reads_the_hubs_settings_and_a_flag_overrides_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_dir, flag_dir = tmp_path / "env-data", tmp_path / "flag-data"
    pw, acl = tmp_path / "passwd", tmp_path / "acl"
    monkeypatch.setenv("VH_DATA_DIR", str(env_dir))
    monkeypatch.setenv("VH_TOPIC_ROOT", "town/v2")
    code, output = _cli("issue", "cam-env", "--password-file", str(pw), "--acl-file", str(acl), "--group", "")
    assert code == 0, output
    assert [r.username for r in CredentialStore.in_data_dir(env_dir, SystemClock()).records()] == ["cam-env"]
    assert "pattern read town/v2/dev/%u/cmd" in acl.read_text()
    code, output = _cli("issue", "cam-flag", "--data-dir", str(flag_dir), "--topic-root", "other/v1",
                        "--password-file", str(pw), "--acl-file", str(acl), "--group", "")
    assert code == 0, output
    assert [r.username for r in CredentialStore.in_data_dir(flag_dir, SystemClock()).records()] == ["cam-flag"]
    assert "pattern read other/v1/dev/%u/cmd" in acl.read_text()


def test_cli_names_a_bad_hub_setting_and_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VH_TOPIC_ROOT", "bad/#")
    code, output = _cli("list", "--data-dir", str(tmp_path))
    assert code == 2 and "VH_TOPIC_ROOT" in output
