"""`mlops train` as typed: one of --batch N or --all, an unreachable or short source said in one line."""

import json
from pathlib import Path

from tests.conftest import run_mlops


def test_usage_error_exits_2() -> None:
    result = run_mlops("train")
    assert result.returncode == 2
    assert "exactly one of --batch N or --all" in result.stderr


def test_unreachable_data_api_fails_clearly(home: Path) -> None:
    from mlops_cli.ops.netutil import free_port

    env = {"MLOPS_DATA_SOURCE": f"http://127.0.0.1:{free_port()}", "MLOPS_DATA_RETRIES": "1", "MLOPS_DATA_BACKOFF": "0"}
    result = run_mlops("train", "--all", env=env)
    assert result.returncode == 1
    assert "failed after 2 attempts" in result.stderr and "Traceback" not in result.stderr


def test_a_batch_the_source_does_not_have_is_one_refusal_that_names_it(home: Path, scripted) -> None:  # noqa: ANN001
    """`train --batch 999` against a data API that has ended, and against the built-in generator:
    one error naming batch 999 (not an exception's class name), wrapped at COLUMNS."""
    from tests.conftest import COURSE_END

    api = scripted([(400, json.dumps({"detail": COURSE_END}), 0)] * 3)
    for flags in (["--source", api.url], []):
        result = run_mlops("train", "--batch", "999", "--no-reload-api", *flags, env={"COLUMNS": "80"})
        said = " ".join(result.stderr.split())
        assert result.returncode == 1 and "batch 999" in said and "Exhausted" not in said, result.stderr
        assert said.startswith("error: ") and said.count("error:") == 1 and "`mlops train --all`" in said
        assert max(map(len, result.stderr.splitlines())) <= 80, result.stderr
