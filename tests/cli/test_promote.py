"""`mlops promote|rollback` as typed: what to promote said once, refusals in one line, nothing moved."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_mlops


def test_promote_needs_a_version_or_the_challenger(home: Path) -> None:
    usage = run_mlops("promote")
    assert usage.returncode == 2 and "give a VERSION or --auto" in usage.stderr


def test_with_nothing_registered_every_move_is_refused_clearly(home: Path) -> None:
    for args in (("promote", "3", "--no-reload-api"), ("promote", "--auto", "--no-reload-api"), ("rollback", "--yes")):
        result = run_mlops(*args)
        assert result.returncode == 1, (args, result.stderr)
        assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr, args
