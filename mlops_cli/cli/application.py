"""The application object every command is handed (after hatch's ``cli/application.py``):
settings with the command's flags on top, the two consoles and the output helpers.

Tables and results go to stdout; progress, warnings and errors to stderr, so that `--json`
output stays one clean document.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from rich.table import Table

    from mlops_cli.config import Settings
    from mlops_cli.pipeline.reports import RunReport

# What to do when a run ended before the source was exhausted, by why it ended.
END_HINTS = {
    "repeating": "run again later, or without --no-wait to wait for it",
    "waited": "run `mlops train --all` again later (MLOPS_DATA_MAX_WAIT sets how long a run waits)",
}


def _stdout() -> Console:
    # Piped or captured output gets room for wide tables instead of rich's 80-column default,
    # unless COLUMNS says how wide the reader is.
    if sys.stdout.isatty():
        return Console()
    columns = os.environ.get("COLUMNS", "")
    return Console(width=int(columns) if columns.isdigit() and int(columns) >= 40 else 160)


def _err_width() -> int | None:
    """How wide stderr's reader is: ``COLUMNS``, else the terminal; ``None`` when piped."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) >= 40:
        return int(columns)
    if sys.stderr.isatty():
        return shutil.get_terminal_size().columns
    return None


@dataclass
class Application:
    verbose: bool = field(default_factory=lambda: os.environ.get("MLOPS_DEBUG", "").lower() in ("1", "true", "yes"))
    out: Console = field(default_factory=_stdout)
    err: Console = field(default_factory=lambda: Console(stderr=True, soft_wrap=True))  # an error stays one line

    def settings(self, **flags: Any) -> Settings:
        """The settings in force, with the command's flags on top (``None`` = flag not given)."""
        from mlops_cli.config import load_settings

        return load_settings(**flags)

    def print_json(self, document: Any) -> None:
        """One JSON document on stdout (no rich markup, no wrapping)."""
        print(json.dumps(document, indent=2, default=str))

    def warn(self, message: str) -> None:
        self.problem("warning", message, style="yellow")

    def problem(self, label: str, message: str, *, style: str = "red") -> None:
        """``label: message`` on stderr, wrapped at the reader's width (``COLUMNS``, else the
        terminal's) with the continuation indented under the message; piped without ``COLUMNS``
        it stays one line, for logs and grep. URLs and paths are never broken."""
        from rich.markup import escape

        width = _err_width()
        lead = f"{label}: "
        lines = (
            textwrap.wrap(
                message,
                width=max(width, len(lead) + 20),
                initial_indent=lead,
                subsequent_indent=" " * len(lead),
                break_long_words=False,
                break_on_hyphens=False,
            )
            if width
            else [lead + message]
        ) or [lead]
        first = f"[{style}]{label}:[/{style}] {escape(lines[0][len(lead) :])}"
        for line in (first, *(escape(rest) for rest in lines[1:])):
            self.err.print(line, highlight=False)

    def line(self, text: str) -> None:
        """One plain line on stdout (no markup, no highlighting)."""
        self.out.print(text, highlight=False, markup=False)

    def batch_table(self, report: RunReport) -> Table:
        """One line per batch; fits 80 columns (tmux's default): a short why here, every number in
        `mlops batches show N`."""
        from rich import box
        from rich.table import Table

        from mlops_cli.pipeline.records import short_reason

        merged = any(b.answers > 1 for b in report.batches)
        table = Table(title="Batches", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
        columns = ("batch", *(("answers",) if merged else ()), "kept", "drop", "fit", "why")
        for name in (*columns, "RMSE", "new", "champ"):
            table.add_column(name, justify="left" if name in ("fit", "why") else "right", no_wrap=name != "why")
        for b in report.batches:
            table.add_row(
                str(b.batch),
                *((str(b.answers),) if merged else ()),
                f"{b.rows_kept:,}",
                f"{b.rows_dropped:,}",
                "[green]yes[/green]" if b.retrained else ("no" if b.state == "done" else b.state),
                short_reason(b),
                money(b.rmse),
                f"v{b.version}" if b.version else "-",
                f"v{b.champion_version}" if b.champion_version else "-",
            )
        return table

    def run_report(self, report: RunReport) -> None:
        """A run of the loop (`mlops train`, `mlops up --train`): its batches, why it ended, the champion."""
        if report.followed:
            self.line(f"source: {report.source} (the dataset's own; --source names another)")
        if report.batches:
            self.out.print(self.batch_table(report))
        if report.end == "exhausted":
            # one wording for `mlops train` and `mlops up --train`, in the CLI's own terms
            first = "no more batches" if report.batches else "no new batches"
            self.line(f"{first}: {report.message}.")
            if not report.batches:
                self.line("`mlops train --all --restart` starts a fresh dataset from batch 0.")
        elif report.message:
            hint = END_HINTS.get(report.end)
            self.line(f"{report.message}" + (f"; {hint}" if hint else ""))
        champion = next((b.champion_version for b in reversed(report.batches) if b.champion_version), None)
        if champion:
            self.line(f"champion: v{champion}  (`mlops models list` shows every version)")


def application(ctx: typer.Context) -> Application:
    """The application object of this invocation (made by `main`, or here when a test invokes a command)."""
    return ctx.ensure_object(Application)


def money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"
