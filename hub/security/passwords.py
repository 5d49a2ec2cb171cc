"""Mosquitto 2.0 password hashes and password files: pure functions, no I/O.

`mosquitto_passwd` of Mosquitto 2.0 writes one `username:hash` line per user where
the hash is `$7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512>` (12-byte
salt, 64-byte digest, 101 iterations by default); Mosquitto reads the iteration
count from each line. The older `$6$<salt>$<sha512(password + salt)>` form of
Mosquitto ≤ 1.6 is still read (verified), never written.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Final

PBKDF2_ITERATIONS: Final = 101
"""As mosquitto_passwd. Passwords here are 128+ random bits, so stretching adds no
safety, only CPU per CONNECT (a wrong-password storm costs the broker more)."""
SALT_BYTES: Final = 12
DIGEST_BYTES: Final = 64
PASSWORD_BYTES: Final = 24
"""Random bytes per generated password: 192 bits, 32 URL-safe characters."""


def generate_password(nbytes: int = PASSWORD_BYTES) -> str:
    """A strong random password, URL-safe (fits in `mqtt://user:pass@host` unquoted)."""
    if nbytes < 16:
        raise ValueError("a device password needs at least 16 random bytes")
    return secrets.token_urlsafe(nbytes)


def hash_password(
    password: str, *, iterations: int = PBKDF2_ITERATIONS, salt: bytes | None = None
) -> str:
    """The `$7$` PBKDF2-SHA512 hash Mosquitto 2.0 accepts in its password file."""
    if iterations < 1:
        raise ValueError("iterations must be ≥ 1")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, DIGEST_BYTES)
    return f"$7${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """True when `password` matches a `$7$` or `$6$` hash; False for anything else."""
    parts = encoded.split("$")
    try:
        if len(parts) == 5 and parts[0] == "" and parts[1] == "7":
            iterations = int(parts[2])
            if not 1 <= iterations <= 10_000_000:
                return False
            salt, want = _unb64(parts[3]), _unb64(parts[4])
            got = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, len(want))
            return hmac.compare_digest(got, want)
        if len(parts) == 4 and parts[0] == "" and parts[1] == "6":
            salt, want = _unb64(parts[2]), _unb64(parts[3])
            got = hashlib.sha512(password.encode() + salt).digest()
            return hmac.compare_digest(got, want)
    except (ValueError, binascii.Error):
        return False
    return False


@dataclass(frozen=True, slots=True)
class PasswordEntry:
    username: str
    hash: str


def parse_password_file(text: str) -> list[PasswordEntry]:
    """`username:hash` lines → entries (blank lines and `#` comments skipped).

    A line without a colon raises ValueError naming its line number, as Mosquitto
    would refuse to start on it.
    """
    entries: list[PasswordEntry] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        username, sep, encoded = line.partition(":")
        if not sep or not username:
            raise ValueError(f"password file line {lineno}: expected username:hash")
        entries.append(PasswordEntry(username, encoded))
    return entries


def render_password_file(entries: list[PasswordEntry]) -> str:
    """Entries → the file Mosquitto reads, sorted by username (stable diffs)."""
    lines = []
    for entry in sorted(entries, key=lambda e: e.username):
        if ":" in entry.username or "\n" in entry.username or "\n" in entry.hash:
            raise ValueError(f"username {entry.username!r} cannot be written to a password file")
        lines.append(f"{entry.username}:{entry.hash}\n")
    return "".join(lines)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)
