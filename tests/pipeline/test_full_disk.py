"""A full disk under MLOPS_HOME (a small tmpfs, filled): every failed run says so in one line
naming the folder, keeps what was committed, and the run after space is freed ends where one
uninterrupted run ends."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_mlops
from tests.store.test_locking import _round_summary

pytestmark = pytest.mark.slow

ENV = {"MLOPS_GENERATOR_BATCHES": "3", "MLOPS_GENERATOR_BATCH_ROWS": "300"}


@pytest.fixture
def small_disk(tmp_path: Path) -> Path:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(path: Path) -> None:
    """Write ``path`` until the disk refuses another byte."""
    with path.open("wb", buffering=0) as out:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    out.write(b"\0" * size)
            except OSError:
                pass


def test_a_full_disk_is_one_line_and_the_run_after_freeing_space_resumes(small_disk: Path, tmp_path: Path) -> None:
    home = small_disk / ".mlops"
    env = {**ENV, "MLOPS_HOME": str(home), "MLOPS_DATA_DB_URL": f"sqlite:///{home}/data.db"}
    assert run_mlops("train", "--batch", "0", "--no-reload-api", env=env).returncode == 0
    filler = small_disk / "filler"
    fill(filler)
    failures = []
    for _ in range(10):  # a staircase of free space: each run fails further on, at another write
        result = run_mlops("train", "--all", "--no-reload-api", env=env)
        if result.returncode == 0:
            break
        failures.append(result.stderr)
        with filler.open("r+b") as out:
            out.truncate(max(filler.stat().st_size - 96_000, 0))
    assert len(failures) >= 2, "the filled disk stopped fewer than two runs: no staircase"
    for stderr in failures:
        assert stderr.count("error:") == 1 and f"error: the disk holding {home} is full (" in stderr, stderr
        assert "Traceback" not in stderr and "SQL:" not in stderr and "sqlalche.me" not in stderr, stderr
    filler.unlink()
    resumed = run_mlops("train", "--all", "--no-reload-api", env=env)
    assert resumed.returncode == 0, resumed.stderr

    reference = tmp_path / "reference" / ".mlops"
    reference_env = {**ENV, "MLOPS_HOME": str(reference), "MLOPS_DATA_DB_URL": f"sqlite:///{reference}/data.db"}
    assert run_mlops("train", "--all", "--no-reload-api", env=reference_env).returncode == 0
    assert _round_summary(env["MLOPS_DATA_DB_URL"], home / "mlflow.db") == _round_summary(
        reference_env["MLOPS_DATA_DB_URL"], reference / "mlflow.db"
    )
