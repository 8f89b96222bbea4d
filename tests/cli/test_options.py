"""Options several commands share behave alike in each: --json, --wait-lock, --reload-api, --source."""

from __future__ import annotations

import typer.main

from mlops_cli.cli.main import app


def _options(*path: str) -> dict[str, object]:
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return {opt: param for param in command.params for opt in getattr(param, "opts", [])}


def test_every_command_that_prints_data_takes_json_the_same_way() -> None:
    for path in (("train",), ("promote",), ("rollback",), ("models", "list"), ("batches", "list"), ("status",)):
        option = _options(*path)["--json"]
        assert option.is_flag and option.help.startswith("Print one JSON document"), path


def test_the_writers_share_wait_lock_and_reload_api() -> None:
    for path in (("train",), ("promote",), ("rollback",)):
        options = _options(*path)
        assert "--wait-lock" in options and "--no-reload-api" in options["--reload-api"].secondary_opts, path


def test_the_source_comes_from_the_flag_or_the_environment() -> None:
    source = _options("train")["--source"]
    assert source.envvar == "MLOPS_DATA_SOURCE" and source.show_envvar
