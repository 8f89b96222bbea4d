"""Typed errors: each says what happened and what to do; a full disk is found under any wrapper."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from mlops_cli.errors import DiskFull, MlopsError, ModelRefused, RegistryError, disk_full, is_disk_full


def test_an_error_reads_as_its_message_with_its_hint_and_exits_1() -> None:
    error = MlopsError("no champion yet", hint="train one with `mlops train --all`")
    assert str(error) == "no champion yet (train one with `mlops train --all`)" and error.exit_code == 1
    assert str(MlopsError("plain")) == "plain" and error.message == "no champion yet"
    assert issubclass(ModelRefused, RegistryError), "a refused model is a registry error the loaders catch"


def test_a_full_disk_is_recognised_through_any_chain_of_causes(tmp_path: Path) -> None:
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("writing the batch failed") from inner
    except RuntimeError as outer:
        assert is_disk_full(outer)
    assert not is_disk_full(OSError(errno.EACCES, "denied"))
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = 13
    try:  # as SQLAlchemy raises it: its own error, the driver's as the cause
        raise sa.exc.OperationalError("INSERT", {}, full) from full
    except sa.exc.OperationalError as wrapped:
        assert is_disk_full(wrapped)
    # a WAL database on a full disk: its shared-memory file cannot grow (a real one in test_full_disk)
    shm = sqlite3.OperationalError("disk I/O error")
    shm.sqlite_errorcode = 4874  # SQLITE_IOERR_SHMSIZE
    assert is_disk_full(shm)
    shm.sqlite_errorcode = 10  # another I/O error is not said to be a full disk
    assert not is_disk_full(shm)


def test_a_full_disk_names_the_folder_its_free_space_and_what_was_kept(tmp_path: Path) -> None:
    error = disk_full(tmp_path / "not" / "there", "batch 3 was not stored")
    assert isinstance(error, DiskFull)
    assert str(tmp_path / "not" / "there") in error.message and "MB free" in error.message
    assert error.message.endswith("batch 3 was not stored") and "run the same command again" in error.hint


@pytest.mark.parametrize("cause", [ValueError("x"), KeyError("y")])
def test_other_failures_are_not_a_full_disk(cause: Exception) -> None:
    assert not is_disk_full(cause)
