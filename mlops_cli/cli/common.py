"""What every command module shares: consoles, JSON output, settings from flags."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from rich.console import Console

# Tables and results go to stdout; progress, warnings and errors to stderr, so that
# `--json` output stays one clean document.
# Piped or captured output gets room for wide tables instead of rich's 80-column default.
out = Console() if sys.stdout.isatty() else Console(width=160)
err = Console(stderr=True, soft_wrap=True)  # an error stays one line, however long

state = {"verbose": os.environ.get("MLOPS_DEBUG", "").lower() in ("1", "true", "yes")}


def print_json(document: Any) -> None:
    """One JSON document on stdout (no rich markup, no wrapping)."""
    print(json.dumps(document, indent=2, default=str))


def settings(**overrides: Any) -> Any:
    """Settings with CLI flags on top (``None`` = flag not given)."""
    from mlops_cli.settings import load_settings

    return load_settings(**overrides)


def money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def warn(message: str) -> None:
    from rich.markup import escape

    err.print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False)
