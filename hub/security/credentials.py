"""Per-device broker credentials: issue, rotate, revoke, and the files Mosquitto reads.

The hub never keeps a password in clear. `CredentialStore` records, in SQLite
(`<VH_DATA_DIR>/credentials.db`), each broker user's role (`device` or `hub`) and
its `$7$` hash, or its revocation. A new password exists only in the value that
`issue`/`rotate` return, which the CLI prints or writes once to a 0600 file.
`write_files` renders Mosquitto's password file and ACL from the record; a reload
(SIGHUP) of Mosquitto applies them and drops revoked clients.

Usernames are device ids (PROTOCOL §1, `hub.topics.is_valid_id`): anything with a
wildcard, a `/`, a blank or a control character is refused before it reaches a file.
"""

from __future__ import annotations

import contextlib
import grp
import logging
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from hub.clock import Clock
from hub.security.acl import render_acl
from hub.security.passwords import (
    PasswordEntry,
    generate_password,
    hash_password,
    render_password_file,
)
from hub.topics import DEFAULT_ROOT, is_valid_id

log = logging.getLogger(__name__)

Role = Literal["device", "hub"]
DB_NAME: Final = "credentials.db"
DEFAULT_BROKER_GROUP: Final = "mosquitto"

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS broker_user (
    username   TEXT PRIMARY KEY,
    role       TEXT NOT NULL CHECK (role IN ('device', 'hub')),
    pw_hash    TEXT,              -- NULL once revoked
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    revoked_at REAL
);
"""


class CredentialError(ValueError):
    """A refused credential operation; the message names the username and says why."""


@dataclass(frozen=True, slots=True)
class IssuedCredential:
    """A password in clear: shown once to the operator, never stored."""

    username: str
    password: str
    role: Role

    def __repr__(self) -> str:  # keep it out of logs and tracebacks
        return f"IssuedCredential(username={self.username!r}, role={self.role!r}, password=***)"


@dataclass(frozen=True, slots=True)
class CredentialRecord:
    username: str
    role: Role
    active: bool
    created_at: float
    updated_at: float
    revoked_at: float | None


def check_username(username: str) -> str:
    """Return `username` when it is a valid device id, else raise CredentialError (logged)."""
    if not is_valid_id(username):
        log.warning("credential refused for invalid id %r: must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", username)
        raise CredentialError(
            f"invalid id {username!r}: ids match ^[A-Za-z0-9][A-Za-z0-9_-]{{0,63}}$ "
            "(no wildcards, '/', blanks or control characters)"
        )
    return username


class CredentialStore:
    """The hashed record of broker users in `<data_dir>/credentials.db`."""

    def __init__(self, path: Path, clock: Clock, *, iterations: int | None = None) -> None:
        self.path = path
        self.clock: Clock = clock
        self._iterations = iterations
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.executescript(_SCHEMA)
        with contextlib.suppress(OSError):
            os.chmod(path, 0o600)

    @classmethod
    def in_data_dir(cls, data_dir: Path, clock: Clock) -> CredentialStore:
        return cls(data_dir / DB_NAME, clock)

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10)
        try:
            with db:
                yield db
        finally:
            db.close()

    def _hash(self, password: str) -> str:
        if self._iterations is None:
            return hash_password(password)
        return hash_password(password, iterations=self._iterations)

    # --- operations -----------------------------------------------------

    def issue(self, username: str, role: Role = "device") -> IssuedCredential:
        """A new password for a user without an active credential (new or revoked)."""
        check_username(username)
        now = self.clock.now()
        password = generate_password()
        with self._db() as db:
            row = db.execute(
                "SELECT role, pw_hash FROM broker_user WHERE username = ?", (username,)
            ).fetchone()
            if row is not None and row[1] is not None:
                raise CredentialError(f"{username} already has a credential: use rotate")
            if row is not None and row[0] != role:
                raise CredentialError(f"{username} is a {row[0]} user, not a {role} user")
            db.execute(
                "INSERT INTO broker_user (username, role, pw_hash, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (username) DO UPDATE SET"
                " pw_hash = excluded.pw_hash, updated_at = excluded.updated_at, revoked_at = NULL",
                (username, role, self._hash(password), now, now),
            )
        log.info("issued broker credential for %s (%s)", username, role)
        return IssuedCredential(username, password, role)

    def rotate(self, username: str) -> IssuedCredential:
        """A new password for an active user; the old one stops working at the next reload."""
        check_username(username)
        password = generate_password()
        with self._db() as db:
            row = db.execute(
                "SELECT role, pw_hash FROM broker_user WHERE username = ?", (username,)
            ).fetchone()
            if row is None or row[1] is None:
                raise CredentialError(f"{username} has no active credential: use issue")
            db.execute(
                "UPDATE broker_user SET pw_hash = ?, updated_at = ? WHERE username = ?",
                (self._hash(password), self.clock.now(), username),
            )
        log.info("rotated broker credential for %s", username)
        return IssuedCredential(username, password, row[0])

    def revoke(self, username: str) -> bool:
        """Forget the user's hash; True when it was active. Applied at the next reload."""
        check_username(username)
        now = self.clock.now()
        with self._db() as db:
            cur = db.execute(
                "UPDATE broker_user SET pw_hash = NULL, revoked_at = ?, updated_at = ?"
                " WHERE username = ? AND pw_hash IS NOT NULL",
                (now, now, username),
            )
            revoked = cur.rowcount == 1
        if revoked:
            log.info("revoked broker credential for %s", username)
        return revoked

    def records(self) -> list[CredentialRecord]:
        with self._db() as db:
            rows = db.execute(
                "SELECT username, role, pw_hash IS NOT NULL, created_at, updated_at, revoked_at"
                " FROM broker_user ORDER BY role, username"
            ).fetchall()
        return [CredentialRecord(r[0], r[1], bool(r[2]), r[3], r[4], r[5]) for r in rows]

    def active_entries(self) -> list[PasswordEntry]:
        with self._db() as db:
            rows = db.execute(
                "SELECT username, pw_hash FROM broker_user WHERE pw_hash IS NOT NULL"
            ).fetchall()
        return [PasswordEntry(u, h) for u, h in rows]

    def hub_users(self) -> list[str]:
        return [r.username for r in self.records() if r.role == "hub" and r.active]

    # --- files ----------------------------------------------------------

    def write_files(
        self,
        password_file: Path,
        acl_file: Path,
        *,
        topic_root: str = DEFAULT_ROOT,
        group: str | None = DEFAULT_BROKER_GROUP,
    ) -> tuple[int, int]:
        """Write the password file and the ACL atomically; return (active users, hub users).

        Files are 0640; when `group` exists (a name, or a numeric gid) and we may,
        they are given to it, so the `mosquitto` user can read them after it drops root.
        """
        entries = self.active_entries()
        hubs = self.hub_users()
        atomic_write(password_file, render_password_file(entries), mode=0o640, group=group)
        atomic_write(acl_file, render_acl(topic_root, hubs), mode=0o640, group=group)
        log.info("wrote %s (%d users) and %s (%d hub users)", password_file, len(entries), acl_file, len(hubs))
        return len(entries), len(hubs)


def atomic_write(path: Path, text: str, *, mode: int, group: str | None = None) -> None:
    """Replace `path` with `text` in one rename, so Mosquitto never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        gid = _group_id(group)
        if gid is not None:
            with contextlib.suppress(PermissionError):
                os.chown(tmp, -1, gid)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _group_id(group: str | None) -> int | None:
    """A group name, or a numeric gid (e.g. 1883, the `mosquitto` group inside the eclipse-mosquitto image)."""
    if not group:
        return None
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        return None


def write_secret_file(path: Path, issued: Iterable[IssuedCredential]) -> int:
    """Write issued passwords once, as CSV `username,password,role`, mode 0600.

    Refuses to overwrite an existing file (a password shown twice is a password leaked twice).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise CredentialError(f"{path} exists: choose a new file (passwords are written once)") from None
    count = 0
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("username,password,role\n")
        for cred in issued:
            f.write(f"{cred.username},{cred.password},{cred.role}\n")
            count += 1
    return count
