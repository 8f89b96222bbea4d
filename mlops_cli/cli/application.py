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
    from mlops_cli.config import Settings


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


def application(ctx: typer.Context) -> Application:
    """The application object of this invocation (made by `main`, or here when a test invokes a command)."""
    return ctx.ensure_object(Application)


def money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"
