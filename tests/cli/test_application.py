"""The object every command is handed: settings with its flags on top, JSON kept clean, problems
said on stderr at the reader's width."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from mlops_cli.cli.application import Application, money
from mlops_cli.pipeline.records import BatchRecord
from mlops_cli.pipeline.reports import RunReport


def _app() -> tuple[Application, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return Application(out=Console(file=out, width=80), err=Console(file=err, width=200, soft_wrap=True)), out, err


def test_flags_not_given_leave_the_settings_alone(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_API_PORT", "8123")
    app, _, _ = _app()
    assert app.settings(api_port=None).api_port == 8123 and app.settings(api_port=9000).api_port == 9000


def test_json_is_one_document_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    app, _, _ = _app()
    app.print_json({"when": Path("/x"), "n": 1})
    assert json.loads(capsys.readouterr().out) == {"when": "/x", "n": 1}


def test_a_problem_wraps_at_the_readers_width_under_its_label(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    app, _, err = _app()
    app.problem("error", "the data API at http://127.0.0.1:8001/data is not reachable after 3 attempts")
    lines = err.getvalue().splitlines()
    assert lines[0].startswith("error: the data API at") and all(line.startswith("       ") for line in lines[1:])
    assert "http://127.0.0.1:8001/data" in err.getvalue(), "a URL is never broken"
    monkeypatch.delenv("COLUMNS")
    app, _, err = _app()
    app.warn("piped: one line for logs and grep " * 5)
    assert len(err.getvalue().splitlines()) == 1 and err.getvalue().startswith("warning: ")


def test_a_run_report_names_its_batches_why_it_ended_and_the_champion() -> None:
    app, out, _ = _app()
    batch = BatchRecord(batch=3, state="done", answers=1, rows_received=100, rows_kept=90, rows_dropped=10,
                        retrained=True, version=4, champion_version=4, reason="first batch", rmse=123456.0,
                        dropped={"price": 10})  # fmt: skip
    app.run_report(RunReport(batches=[batch], end="exhausted", message="every batch has been served"))
    text = out.getvalue()
    assert "123,456" in text and "v4" in text and "no more batches: every batch has been served." in text
    assert "champion: v4" in text and all(len(line) <= 80 for line in text.splitlines())
    assert money(None) == "-" and money(1234.5) == "1,234"
