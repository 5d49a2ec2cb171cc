"""The data directory is private (issue 11 item 11): 0700 directories, 0600 files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hub.preflight import DataDirError, prepare_data_dir, restrict_umask

pytestmark = pytest.mark.unit


def mode(p: Path) -> int:
    return stat.S_IMODE(p.lstat().st_mode)


def test_a_new_data_dir_is_created_0700_with_its_parents(tmp_path: Path) -> None:
    d = prepare_data_dir(tmp_path / "a" / "data")
    assert mode(d) == 0o700


def test_an_existing_open_data_dir_and_its_contents_are_tightened(tmp_path: Path) -> None:
    d = tmp_path / "data"
    (d / "snapshots" / "cam-1").mkdir(parents=True)
    for sub in (d, d / "snapshots", d / "snapshots" / "cam-1"):
        os.chmod(sub, 0o755)
    db = d / "hub.db"
    db.write_bytes(b"x")
    os.chmod(db, 0o644)
    jpg = d / "snapshots" / "cam-1" / "latest.jpg"
    jpg.write_bytes(b"x")
    os.chmod(jpg, 0o664)
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"x")
    os.chmod(outside, 0o644)
    (d / "link").symlink_to(outside)

    prepare_data_dir(d)

    assert mode(d) == mode(d / "snapshots") == mode(d / "snapshots" / "cam-1") == 0o700
    assert mode(db) == mode(jpg) == 0o600
    assert mode(outside) == 0o644, "a symlink's target outside the data dir is not touched"


def test_a_file_in_the_way_is_a_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "data"
    f.write_text("not a dir")
    with pytest.raises(DataDirError, match="VH_DATA_DIR"):
        prepare_data_dir(f)


def test_restrict_umask_makes_new_files_private(tmp_path: Path) -> None:
    old = restrict_umask()
    try:
        (tmp_path / "new.db").write_bytes(b"x")
        (tmp_path / "newdir").mkdir()
    finally:
        os.umask(old)
    assert mode(tmp_path / "new.db") == 0o600
    assert mode(tmp_path / "newdir") == 0o700
