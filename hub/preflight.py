"""Start-up checks and the data directory's permissions (issue 11 item 11).

The data directory holds tokens, the registry, alerts, schedules, snapshots and the write
spool: it is made 0700 (its files 0600) and every file the hub creates afterwards is private
to its user (`restrict_umask`, set by the `villagehub` command before anything is created).
`http_port_problem` tells, in one line, why the HTTP server could not listen.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from pathlib import Path

from hub.settings import SettingsError

PRIVATE_UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600


class DataDirError(SettingsError):
    """The data directory cannot be created or used; the message says why."""


def restrict_umask() -> int:
    """Files and directories created from now on are private to this user; returns the old umask."""
    return os.umask(PRIVATE_UMASK)


def _tighten(path: Path, st: os.stat_result) -> None:
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        if mode != DIR_MODE:
            os.chmod(path, DIR_MODE)
    elif stat.S_ISREG(st.st_mode) and mode & 0o077:
        os.chmod(path, mode & 0o700 or FILE_MODE)


def prepare_data_dir(path: Path) -> Path:
    """Create `path` (0700) or tighten an existing one: the directory and everything in it
    lose group and other permissions (a data dir made by an older version, or copied in).
    Symbolic links are left alone and not followed."""
    try:
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        _tighten(path, path.stat())
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                p = Path(root) / name
                st = p.lstat()
                if not stat.S_ISLNK(st.st_mode):
                    _tighten(p, st)
    except PermissionError as exc:
        raise DataDirError(f"VH_DATA_DIR {path}: permission denied ({exc.filename}); "
                           "choose a directory this user owns") from None
    except FileExistsError:
        raise DataDirError(f"VH_DATA_DIR {path}: exists and is not a directory") from None
    except OSError as exc:
        raise DataDirError(f"VH_DATA_DIR {path}: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise DataDirError(f"VH_DATA_DIR {path}: not writable by this user")
    return path


def http_port_problem(host: str, port: int, *, flag: str = "VH_HTTP_PORT") -> str | None:
    """None when `host:port` can be listened on now, else one line saying why not."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot listen on {host}:{port}: VH_HTTP_HOST {host!r} is not known ({exc.strerror})"
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            s.bind(addr)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (f"port {port} on {host} is already in use (another VillageHub?); "
                        f"choose another with {flag}")
            if exc.errno == errno.EADDRNOTAVAIL:
                return f"cannot listen on {host}:{port}: {host} is not an address of this machine (VH_HTTP_HOST)"
            if exc.errno == errno.EACCES:
                return f"cannot listen on port {port}: ports below 1024 need extra privileges; choose another with {flag}"
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None
