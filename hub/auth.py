"""API tokens and roles (PROTOCOL §7): viewer < operator < admin.

Tokens are random 256-bit strings shown once; only their SHA-256 is stored
(`<data_dir>/hub.db`). `VH_BOOTSTRAP_TOKEN`, when set, is accepted as an admin token.
A token's id is the first 12 hex digits of its hash; revoking takes that exact id.
Valid tokens are cached for `TOKEN_CACHE_TTL_S`, so a revoke made by another process
(`villagehub token revoke`) takes effect within that time. Failed authentications are
rate-limited per client address.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from hub.clock import Clock
from hub.roles import ROLES, Role, role_allows

TOKEN_PREFIX: Final = "vh_"
TOKEN_ID_LEN: Final = 12
TOKEN_ID_PATTERN: Final = re.compile(r"[0-9a-f]{12}")
# How long a valid token is trusted without looking at the database again: a revoke
# made by another process takes effect everywhere within this time (issue 11: ≤ 5 s).
TOKEN_CACHE_TTL_S: Final = 2.0


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role
    token_id: str  # first chars of the hash; names the token in logs and audits

    def allows(self, need: Role) -> bool:
        return role_allows(self.role, need)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    token_id: str
    name: str
    role: Role
    created_at: float
    revoked_at: float | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def cli_principal() -> Principal:
    """The actor of `villagehub token …` in the audit log: whoever can open the data dir."""
    try:
        user = getpass.getuser()
    except Exception:  # no login name (some containers)
        user = "unknown"
    return Principal(f"cli:{user}"[:64], "admin", "cli")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
  hash TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  role TEXT NOT NULL,
  created_at REAL NOT NULL,
  revoked_at REAL
);
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ts REAL NOT NULL,
  actor TEXT NOT NULL,
  role TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT,
  detail TEXT
);
"""


class TokenStore:
    def __init__(self, db_path: Path, bootstrap_token: str | None = None, *, clock: Clock,
                 cache_ttl_s: float = TOKEN_CACHE_TTL_S) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(db_path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._bootstrap_hash = hash_token(bootstrap_token) if bootstrap_token else None
        self._clock = clock
        self._cache_ttl_s = cache_ttl_s
        self._cache: dict[str, tuple[Principal, float]] = {}  # digest → (principal, checked at)

    def create(self, name: str, role: Role, now: float | None = None) -> str:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if not name or len(name) > 64:
            raise ValueError("name must be 1–64 characters")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._lock:
            self._db.execute(
                "INSERT INTO tokens(hash, name, role, created_at) VALUES (?,?,?,?)",
                (hash_token(token), name, role, self._clock.now() if now is None else now),
            )
        return token

    def authenticate(self, token: str | None) -> Principal | None:
        if not token or len(token) > 256:
            return None
        digest = hash_token(token)
        if self._bootstrap_hash and hmac.compare_digest(digest, self._bootstrap_hash):
            return Principal("bootstrap", "admin", digest[:12])
        now = self._clock.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
            if cached and now - cached[1] < self._cache_ttl_s:
                return cached[0]
            row = self._db.execute(
                "SELECT name, role FROM tokens WHERE hash=? AND revoked_at IS NULL", (digest,)
            ).fetchone()
            if row is None:
                self._cache.pop(digest, None)
                return None
            principal = Principal(row[0], row[1], digest[:TOKEN_ID_LEN])
            self._cache[digest] = (principal, now)
            return principal

    def tokens(self) -> list[TokenInfo]:
        with self._lock:
            rows = self._db.execute(
                "SELECT substr(hash,1,12), name, role, created_at, revoked_at FROM tokens ORDER BY created_at"
            ).fetchall()
        return [TokenInfo(*r) for r in rows]

    def revoke(self, token_id: str, now: float | None = None) -> bool:
        """Revoke the token whose id (`tokens()`, `villagehub token list`) is exactly `token_id`."""
        if not TOKEN_ID_PATTERN.fullmatch(token_id):
            return False  # a pattern, a prefix or anything else names no token
        with self._lock:
            cur = self._db.execute(
                "UPDATE tokens SET revoked_at=? WHERE substr(hash, 1, ?) = ? AND revoked_at IS NULL",
                (self._clock.now() if now is None else now, TOKEN_ID_LEN, token_id),
            )
            self._cache.clear()
            return cur.rowcount > 0

    def audit(self, actor: Principal, action: str, target: str | None = None, detail: str = "") -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO audit(ts, actor, role, action, target, detail) VALUES (?,?,?,?,?,?)",
                (self._clock.now(), actor.name, actor.role, action, target, detail[:2000]),
            )

    def audit_log(self, limit: int = 200) -> list[dict[str, object]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT ts, actor, role, action, target, detail FROM audit ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [dict(zip(("ts", "actor", "role", "action", "target", "detail"), r, strict=True)) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class FailureLimiter:
    """At most `limit` events per key in `window_s` seconds (failed authentications per client
    address; also used for other per-caller rates)."""

    def __init__(self, limit: int = 30, window_s: float = 60.0, max_clients: int = 10_000) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_clients = max_clients
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, client: str, now: float) -> float | None:
        """Seconds to wait when `client` is over the limit, else None."""
        with self._lock:
            q = self._failures.get(client)
            if not q:
                return None
            while q and q[0] <= now - self.window_s:
                q.popleft()
            if len(q) >= self.limit:
                return max(1.0, q[0] + self.window_s - now)
            return None

    def record_failure(self, client: str, now: float) -> None:
        with self._lock:
            if client not in self._failures and len(self._failures) >= self.max_clients:
                self._failures.pop(next(iter(self._failures)))
            self._failures.setdefault(client, deque(maxlen=self.limit)).append(now)
