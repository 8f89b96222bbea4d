"""`mlops up|down|status|logs`: the local stack as supervised processes."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from mlops_cli.cli.application import Application, application
from mlops_cli.cli.options import JsonOption

if TYPE_CHECKING:
    from mlops_cli.config import Settings


class Target(StrEnum):
    local = "local"
    k8s = "k8s"


TargetOption = Annotated[Target, typer.Option(help="local processes, or the Kubernetes cluster of kubectl's context.")]
OverlayOption = Annotated[str, typer.Option(help="With --target k8s: kustomize/overlays/NAME (local or prod).")]


def _table(app: Application, rows) -> None:
    from rich.table import Table

    table = Table(title="mlops stack", title_justify="left")
    for name in ("service", "URL", "pid", "health"):
        table.add_column(name)
    for row in rows:
        health = f"[green]healthy[/green] {row.detail}" if row.healthy else f"[red]down[/red] {row.detail}"
        table.add_row(row.service, row.url, str(row.pid or "-"), health)
    app.out.print(table)


def up(
    ctx: typer.Context,
    with_: Annotated[
        list[str] | None, typer.Option("--with", help="Also start an optional service: airflow.", show_default=False)
    ] = None,
    train: Annotated[
        bool, typer.Option("--train", help="Then run every batch through the stack and make one prediction.")
    ] = False,
    target: TargetOption = Target.local,
    overlay: OverlayOption = "local",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="With --target k8s: render, validate, print the plan.")
    ] = False,
    gitops: Annotated[
        bool, typer.Option("--gitops", help="With --target k8s: apply only the Argo CD root app.")
    ] = False,
    repo_url: Annotated[
        str | None, typer.Option(help="With --gitops: your Git repository.", envvar="MLOPS_GITOPS_REPO_URL")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Start the data API, MLflow, the inference API, the UI and Prometheus (when installed)."""
    from mlops_cli.ops import stack
    from mlops_cli.ops.services import OPTIONAL_SERVICES

    app = application(ctx)
    if target is Target.k8s:
        _up_k8s(app, overlay, dry_run, gitops, repo_url, as_json)
        return
    if dry_run or gitops:
        raise typer.BadParameter("--dry-run and --gitops go with --target k8s", param_hint="--target")

    extras = tuple(dict.fromkeys(with_ or []))
    unknown = [name for name in extras if name not in OPTIONAL_SERVICES]
    if unknown:
        raise typer.BadParameter(f"unknown service {unknown[0]!r}; optional services: airflow", param_hint="--with")
    config = app.settings()
    with app.err.status("starting the stack", spinner="dots") as spinner:

        def event(name: str, what: str) -> None:
            spinner.update(f"{name}: {what}")
            if what in ("healthy", "already running", "stopping"):
                app.err.print(f"  {name}: {what}", highlight=False)

        rows, skipped = stack.up(config, event, extras)
    for name, why in skipped.items():
        app.warn(f"{name} skipped: {why}")
    result = {"services": [r.to_dict() for r in rows], "skipped": skipped}
    if not as_json:
        _table(app, rows)
    if train:
        result["train"] = _train_through(app, config, show=not as_json)
        rows = stack.status(config)
        result["services"] = [r.to_dict() for r in rows]
    if as_json:
        app.print_json(result)
        return
    if train:
        _table(app, rows)
        _where_to_look(app, config, rows)
    elif any(r.service == "api" and "serving v" in r.detail for r in rows):
        # already trained: say what to do with a served model, not how to train one
        app.out.print(
            "the API serves a champion: `mlops predict -s city=… -s state=… -s zip_code=…`; "
            "`mlops train --all` takes new batches; `mlops down` stops it all.",
            highlight=False,
        )
    else:
        app.out.print(
            "next: `mlops up --train` (or `mlops train --all`), then `mlops predict`; `mlops down` stops it all."
        )


def _train_through(app: Application, config: Settings, show: bool) -> dict:
    """Every batch from the stack's data API, then one prediction through the stack's API."""
    from mlops_cli.ops.stack import train_through
    from mlops_cli.schema import EXAMPLE_LISTING

    with app.err.status("training", spinner="dots") as spinner:
        report, answer = train_through(config, progress=spinner.update)
    if show:
        app.run_report(report)
        price, model = answer["predictions"][0], answer["model"]
        bounds = (answer.get("intervals") or [None])[0]
        ranged = (
            f", {answer.get('interval_level') or 0.8:.0%} range ${bounds[0]:,.0f}–${bounds[1]:,.0f}" if bounds else ""
        )
        app.line(
            f"prediction through the API: {EXAMPLE_LISTING['city']}, {EXAMPLE_LISTING['house_size']} sq ft → "
            f"${price:,.0f}{ranged} (v{model['version']}, {model['alias']})"
        )
    return {**report.to_dict(), "prediction": answer}


def _where_to_look(app: Application, config, rows) -> None:
    urls = {r.service: r.url for r in rows}
    app.out.print("\nwhere to look:")
    for name, what in (
        ("ui", "Streamlit UI"),
        ("mlflow", "MLflow (runs, registry)"),
        ("api", "inference API docs"),
        ("prometheus", "Prometheus"),
    ):
        if name in urls:
            app.out.print(f"  {what:<26} {urls[name]}", highlight=False)
            if name == "mlflow":
                from mlops_cli.registry.auth import admin, credentials_path

                login = f"{admin(config).username}, password in {credentials_path(config)}"
                app.out.print(f"  {'':<26} (sign in as {login})", highlight=False)
    app.out.print("the stack keeps running: `mlops status`, `mlops logs -f` (every service), `mlops down`.")


def _up_k8s(app: Application, overlay: str, dry_run: bool, gitops: bool, repo_url: str | None, as_json: bool) -> None:
    from rich.table import Table

    from mlops_cli.ops import k8s

    if dry_run:
        the_plan = k8s.plan(overlay)
        rows = the_plan.summary()
        if as_json:
            app.print_json({"overlay": overlay, "valid": True, "objects": rows})
            return
        table = Table(title=f"plan for overlay {overlay}: {len(rows)} objects, all valid", title_justify="left")
        for name in ("kind", "name", "namespace"):
            table.add_column(name)
        for row in rows:
            table.add_row(row["kind"], row["name"], row["namespace"])
        app.out.print(table)
        app.out.print(
            "Secrets would be created (each value from the environment, else kept from the cluster, "
            "else generated); nothing was applied."
        )
        if overlay == "local" and not gitops:
            images = ", ".join(k8s.LOCAL_IMAGES)
            app.out.print(f"The local overlay runs {images}: built with docker, loaded into kind/k3d/minikube.")
        return
    with app.err.status("deploying", spinner="dots") as spinner:
        done = k8s.up(overlay, gitops, repo_url, on_event=spinner.update)
    if as_json:
        app.print_json({"overlay": overlay, "gitops": gitops, "ready": done})
        return
    app.out.print(("handed to Argo CD: " if gitops else "rolled out: ") + ", ".join(done), highlight=False)


def down(
    ctx: typer.Context,
    target: TargetOption = Target.local,
    overlay: OverlayOption = "local",
    as_json: JsonOption = False,
) -> None:
    """Stop exactly the processes `mlops up` started (or delete what it applied to the cluster)."""
    from mlops_cli.ops import stack

    app = application(ctx)
    if target is Target.k8s:
        from mlops_cli.ops import k8s

        k8s.down(overlay)
        app.print_json({"deleted": overlay}) if as_json else app.out.print(
            f"deleted the {overlay} overlay from the cluster (volumes and Secrets kept for the next up)"
        )
        return

    with app.err.status("stopping", spinner="dots") as spinner:
        stopped = stack.down(app.settings(), lambda name, what: spinner.update(f"{name}: {what}"))
    if as_json:
        app.print_json({"stopped": stopped})
        return
    app.out.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running", highlight=False)


def status(ctx: typer.Context, target: TargetOption = Target.local, as_json: JsonOption = False) -> None:
    """Each service with its health, checked on its real health endpoint (or each rollout on k8s).

    Exits 1 when a service is down or the stack is not running, 0 when everything is healthy.
    """
    from mlops_cli.ops import stack

    app = application(ctx)
    if target is Target.k8s:
        from mlops_cli.ops import k8s

        rows = k8s.status()
        if as_json:
            app.print_json(rows)
        else:
            for row in rows:
                line = f"{row['kind']:<12} {row['name']:<12} {row['ready']}/{row['desired']} ready"
                app.out.print(line, highlight=False)
        if not rows or any(row["ready"] < row["desired"] for row in rows):
            raise typer.Exit(1)  # for scripts and probes: not everything is up
        return

    rows = stack.status(app.settings())
    if as_json:
        app.print_json([r.to_dict() for r in rows])
    elif not rows:
        app.out.print("the stack is not running: `mlops up` starts it")
    else:
        _table(app, rows)
    if not rows or not all(r.healthy for r in rows):
        raise typer.Exit(1)  # for scripts and probes: not everything is up


def logs(
    ctx: typer.Context,
    service: Annotated[
        str | None,
        typer.Argument(help="mlflow, data-api, api, ui, prometheus or airflow; none: all, interleaved."),
    ] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", min=0, help="How many last lines to show (0: all).")] = 50,
    since: Annotated[
        str | None,
        typer.Option(help="Only lines from this time on: 10m, 2h, 1d or 2026-11-28T10:00.", metavar="WHEN"),
    ] = None,
) -> None:
    """Show a service's log, or every service's interleaved by time with a prefix."""
    import sys

    from mlops_cli.ops.logs import follow as follow_log
    from mlops_cli.ops.logs import lines_since, log_file, log_tail, merged_logs
    from mlops_cli.ops.logs import since as since_time

    app = application(ctx)
    settings = app.settings()
    try:
        start = since_time(since) if since else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
    if service is None:
        for line in merged_logs(settings, start, lines):
            print(line)
    else:
        path = log_file(settings, service)
        if start is not None:
            print("\n".join(lines_since(path, start, lines)))
        elif lines:
            print(log_tail(path, lines))
    if follow:
        for line in follow_log(settings, service):
            sys.stdout.write(line)
            sys.stdout.flush()
