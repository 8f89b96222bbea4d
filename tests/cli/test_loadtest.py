"""`mlops loadtest` as typed: against nothing, a clear error; a bad duration, a usage error."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_mlops


def test_loadtest_against_nothing_is_a_clear_error(home: Path) -> None:
    from mlops_cli.ops.netutil import free_port

    result = run_mlops("loadtest", "--host", f"http://127.0.0.1:{free_port()}", "--duration", "2s")
    assert result.returncode == 1 and "is not reachable" in result.stderr
    assert result.stderr.startswith("error:"), "no stray blank line before the message"
    bad = run_mlops("loadtest", "--duration", "soon")
    assert bad.returncode == 2 and "duration like 30s" in bad.stderr
