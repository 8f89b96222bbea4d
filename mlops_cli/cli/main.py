"""The `mlops` command: groups joined here; errors mapped to one stderr line and an exit code."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from mlops_cli import __version__
from mlops_cli.cli import (
    batches,
    buckets,
    config,
    dashboard,
    data,
    events,
    loadtest,
    models,
    predict,
    promote,
    serve,
    stack,
    train,
    ui,
)
from mlops_cli.cli.application import Application, application


def _type_label(self, ctx) -> str | None:  # noqa: ANN001 — a typer method, replaced below
    """An option's type in --help as click shows it: none for a flag, the metavar when one is
    given, else TEXT, INTEGER, NUMBER, PATH (and ... when it repeats), choices as a|b."""
    if getattr(self, "is_flag", False):
        return None
    if self.metavar:
        return self.metavar
    raw = _typer_display_type(self, ctx)[1:-1]
    many = raw.startswith("list[")
    raw = raw.removeprefix("list[").removesuffix("]").replace(" range", "")
    names = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER", "path": "PATH", "file": "FILE", "directory": "DIR"}
    return names.get(raw, raw) + ("..." if many else "")


# Typer 0.29 shows types as `<bool>`, `<list[str]>`, `<int range>` (tests/cli/test_main.py checks).
_typer_display_type = typer.core.TyperOption.display_type
typer.core.TyperOption.display_type_rich = _type_label
typer.core.TyperArgument.display_type_rich = _type_label

app = typer.Typer(
    name="mlops",
    help="A continuously retrained house-price model: data in, better model out, served and measured.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(data.group, name="data")
app.add_typer(models.group, name="models")
app.add_typer(batches.group, name="batches")
app.add_typer(events.group, name="events")
app.add_typer(config.group, name="config")
app.add_typer(dashboard.group, name="dashboard")
app.add_typer(buckets.group, name="buckets")
app.command("train")(train.train)
app.command("promote")(promote.promote)
app.command("rollback")(promote.rollback)
app.command("serve")(serve.serve)
app.command("predict", epilog=predict.FIELDS_HELP)(predict.predict)
app.command("up")(stack.up)
app.command("down")(stack.down)
app.command("status")(stack.status)
app.command("logs")(stack.logs)
app.command("loadtest")(loadtest.loadtest)
app.command("ui")(ui.ui)


def _version(value: bool) -> None:
    if value:
        print(f"mlops {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Show tracebacks on errors (anywhere on the line).", envvar="MLOPS_DEBUG"),
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    application(ctx).verbose |= verbose


VERBOSE_FLAGS = ("-v", "--verbose")
# An optional library -> the extra that installs it.
EXTRAS = {
    "kubernetes_validate": "k8s",
    "jsonschema": "k8s",
    "yaml": "k8s",
    "boto3": "s3",
    "streamlit": "ui",
    "locust": "loadtest",
    "airflow": "airflow",
    "psycopg": "postgres",
    "pymysql": "mysql",
    "uvicorn": "serving",
    "prometheus_client": "serving",
}


def install_hint(extra: str) -> str:
    """How to add an extra, for a clone and for an installed package alike."""
    return f"pip install -e '.[{extra}]' in a clone of mlops, or pip install 'mlops[{extra}]'"


def _home() -> str:
    """MLOPS_HOME as the settings have it (for a message: never fails)."""
    try:
        from mlops_cli.config import load_settings

        return str(load_settings().home)
    except Exception:
        return os.environ.get("MLOPS_HOME", ".mlops")


def main() -> None:
    from mlops_cli.errors import DiskFull, MlopsError, disk_full, is_disk_full

    # Whatever mlops and the services it starts write (databases, logs, artifacts, the token)
    # is its owner's only: files 0600, folders 0700.
    os.umask(0o077)
    session = Application()
    args = sys.argv[1:]
    # `-v` works after the subcommand too, as the hint on every error says
    if any(arg in VERBOSE_FLAGS for arg in args[1:]):
        session.verbose = True
        args = [args[0], *(arg for arg in args[1:] if arg not in VERBOSE_FLAGS)]
    try:
        try:
            app(args=args, obj=session, prog_name="mlops")
        except Exception as exc:
            if is_disk_full(exc) and not isinstance(exc, DiskFull):
                raise disk_full(_home(), "what was committed before stays") from exc
            raise
    except MlopsError as exc:
        if session.verbose:
            session.err.print_exception()
        if exc.details:
            session.err.print(exc.details, highlight=False, markup=False)
        session.problem("error", exc.message + (f" — {exc.hint}" if exc.hint else ""))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        session.err.print("interrupted")
        sys.exit(130)
    except ModuleNotFoundError as exc:  # an optional part that is not installed: say which extra
        if session.verbose:
            session.err.print_exception()
        top = (exc.name or "").split(".")[0]
        extra = EXTRAS.get(top)
        hint = install_hint(extra) if extra else "pip install -e '.[all]' in a clone of mlops"
        session.problem("error", f"this command needs {top}, which is not installed — {hint}")
        sys.exit(1)
    except Exception as exc:  # the last line of defence: never a bare traceback
        if session.verbose:
            session.err.print_exception()
        session.problem("error", f"{type(exc).__name__}: {exc} — run with -v for the traceback")
        sys.exit(1)


if __name__ == "__main__":
    main()
