"""The suite's PostgreSQL helper: where it finds the binaries; a failed start is an error."""

from __future__ import annotations

import stat
import tempfile
from pathlib import Path

import pytest

import pgserver

pytestmark = pytest.mark.unit


def fake_binaries(folder: Path, exit_code: int) -> Path:
    folder.mkdir(parents=True)
    for name in ("initdb", "pg_ctl"):
        script = folder / name
        script.write_text(f"#!/bin/sh\necho 'fake {name} failed' >&2\nexit {exit_code}\n")
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder


def test_no_binaries_anywhere_is_none(tmp_path: Path) -> None:
    assert (
        pgserver.find_bin_dir(
            path=str(tmp_path), pattern=str(tmp_path / "postgresql" / "*" / "bin")
        )
        is None
    )


def test_the_newest_installed_version_is_found_off_path(tmp_path: Path) -> None:
    for version in ("13", "15"):
        fake_binaries(tmp_path / "postgresql" / version / "bin", 0)
    found = pgserver.find_bin_dir(
        path=str(tmp_path / "empty"), pattern=str(tmp_path / "postgresql" / "*" / "bin")
    )
    assert found == tmp_path / "postgresql" / "15" / "bin"


def test_binaries_that_fail_to_start_are_an_error_not_a_skip(tmp_path: Path) -> None:
    bin_dir = fake_binaries(tmp_path / "bin", 1)
    with pytest.raises(pgserver.PostgresStartError, match=r"initdb failed \(1\)"):
        pgserver.start(bin_dir, prefix="triage-pg-fail-")
    assert not list(
        Path(tempfile.gettempdir()).glob("triage-pg-fail-*")
    )  # its temp directory is removed
