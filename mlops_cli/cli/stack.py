"""`mlops up|down|status|logs`: the local stack as supervised processes."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from mlops_cli.cli.common import err, out, print_json, settings, warn

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


class Target(StrEnum):
    local = "local"
    k8s = "k8s"


TargetOption = Annotated[Target, typer.Option(help="local processes, or the Kubernetes cluster of kubectl's context.")]
OverlayOption = Annotated[str, typer.Option(help="With --target k8s: kustomize/overlays/NAME (local or prod).")]
EXAMPLE = {"city": "Austin", "state": "Texas", "zip_code": "75003", "house_size": 1800, "bed": 3, "bath": 2}


def _table(rows) -> None:  # noqa: ANN001 - ServiceStatus list
    from rich.table import Table

    table = Table(title="mlops stack", title_justify="left")
    for name in ("service", "URL", "pid", "health"):
        table.add_column(name)
    for row in rows:
        health = f"[green]healthy[/green] {row.detail}" if row.healthy else f"[red]down[/red] {row.detail}"
        table.add_row(row.service, row.url, str(row.pid or "-"), health)
    out.print(table)


def up(
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
    from mlops_cli import stack

    if target is Target.k8s:
        _up_k8s(overlay, dry_run, gitops, repo_url, as_json)
        return
    if dry_run or gitops:
        raise typer.BadParameter("--dry-run and --gitops go with --target k8s", param_hint="--target")

    extras = tuple(dict.fromkeys(with_ or []))
    unknown = [name for name in extras if name not in stack.OPTIONAL_SERVICES]
    if unknown:
        raise typer.BadParameter(f"unknown service {unknown[0]!r}; optional services: airflow", param_hint="--with")
    config = settings()
    with err.status("starting the stack", spinner="dots") as spinner:

        def event(name: str, what: str) -> None:
            spinner.update(f"{name}: {what}")
            if what in ("healthy", "already running", "stopping"):
                err.print(f"  {name}: {what}", highlight=False)

        rows, skipped = stack.up(config, event, extras)
    for name, why in skipped.items():
        warn(f"{name} skipped: {why}")
    result = {"services": [r.to_dict() for r in rows], "skipped": skipped}
    if not as_json:
        _table(rows)
    if train:
        result["train"] = _train_through(config, rows, show=not as_json)
        rows = stack.status(config)
        result["services"] = [r.to_dict() for r in rows]
    if as_json:
        print_json(result)
        return
    if train:
        _table(rows)
        _where_to_look(config, rows)
    else:
        out.print("next: `mlops up --train` (or `mlops train --all`), then `mlops predict`; `mlops down` stops it all.")


def _train_through(config, rows, show: bool) -> dict:  # noqa: ANN001
    """Every batch from the stack's data API, then one prediction through the stack's API."""
    from mlops_cli.cli.train import render
    from mlops_cli.engine import run
    from mlops_cli.predict_client import request_predictions

    data_api = next(r.url for r in rows if r.service == "data-api").removesuffix("/docs")
    loop_settings = config.model_copy(update={"data_source": data_api})
    with err.status("training", spinner="dots") as spinner:
        report = run(loop_settings, progress=spinner.update)
    if show:
        render(report)
    import time

    from mlops_cli.errors import MlopsError

    deadline = time.monotonic() + 30  # the API picks the champion up via /load_model (or its watcher)
    while True:
        try:
            answer = request_predictions(config.api_url, [EXAMPLE])
            break
        except MlopsError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    price, model = answer["predictions"][0], answer["model"]
    if show:
        out.print(
            f"prediction through the API: {EXAMPLE['city']}, {EXAMPLE['house_size']} sq ft → "
            f"${price:,.0f} (v{model['version']}, {model['alias']})",
            highlight=False,
        )
    return {**report.to_dict(), "prediction": answer}


def _where_to_look(config, rows) -> None:  # noqa: ANN001
    urls = {r.service: r.url for r in rows}
    out.print("\nwhere to look:")
    for name, what in (
        ("ui", "Streamlit UI"),
        ("mlflow", "MLflow (runs, registry)"),
        ("api", "inference API docs"),
        ("prometheus", "Prometheus"),
    ):
        if name in urls:
            out.print(f"  {what:<26} {urls[name]}", highlight=False)
    out.print("the stack keeps running: `mlops status`, `mlops logs SERVICE -f`, `mlops down`.")


def _up_k8s(overlay: str, dry_run: bool, gitops: bool, repo_url: str | None, as_json: bool) -> None:
    from rich.table import Table

    from mlops_cli import k8s

    if dry_run:
        the_plan = k8s.plan(overlay)
        rows = the_plan.summary()
        if as_json:
            print_json({"overlay": overlay, "valid": True, "objects": rows})
            return
        table = Table(title=f"plan for overlay {overlay}: {len(rows)} objects, all valid", title_justify="left")
        for name in ("kind", "name", "namespace"):
            table.add_column(name)
        for row in rows:
            table.add_row(row["kind"], row["name"], row["namespace"])
        out.print(table)
        out.print("Secret mlops-secrets would be created from the environment; nothing was applied.")
        return
    with err.status("deploying", spinner="dots") as spinner:
        done = k8s.up(overlay, gitops, repo_url, on_event=spinner.update)
    if as_json:
        print_json({"overlay": overlay, "gitops": gitops, "ready": done})
        return
    out.print(("handed to Argo CD: " if gitops else "rolled out: ") + ", ".join(done), highlight=False)


def down(target: TargetOption = Target.local, overlay: OverlayOption = "local", as_json: JsonOption = False) -> None:
    """Stop exactly the processes `mlops up` started (or delete what it applied to the cluster)."""
    from mlops_cli import stack

    if target is Target.k8s:
        from mlops_cli import k8s

        k8s.down(overlay)
        print_json({"deleted": overlay}) if as_json else out.print(f"deleted the {overlay} overlay from the cluster")
        return

    with err.status("stopping", spinner="dots") as spinner:
        stopped = stack.down(settings(), lambda name, what: spinner.update(f"{name}: {what}"))
    if as_json:
        print_json({"stopped": stopped})
        return
    out.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running", highlight=False)


def status(target: TargetOption = Target.local, as_json: JsonOption = False) -> None:
    """Each service with its health, checked on its real health endpoint (or each rollout on k8s)."""
    from mlops_cli import stack

    if target is Target.k8s:
        from mlops_cli import k8s

        rows = k8s.status()
        if as_json:
            print_json(rows)
            return
        for row in rows:
            out.print(f"{row['kind']:<12} {row['name']:<12} {row['ready']}/{row['desired']} ready", highlight=False)
        return

    rows = stack.status(settings())
    if as_json:
        print_json([r.to_dict() for r in rows])
        return
    if not rows:
        out.print("the stack is not running: `mlops up` starts it")
        return
    _table(rows)


def logs(
    service: Annotated[str, typer.Argument(help="mlflow, data-api, api, ui, prometheus or airflow.")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", min=0, help="How many last lines to show.")] = 50,
) -> None:
    """Show a service's log."""
    import sys
    import time

    from mlops_cli.stack import log_file, log_tail

    path = log_file(settings(), service)
    if lines:
        print(log_tail(path, lines))
    if not follow:
        return
    with path.open(errors="replace") as handle:
        handle.seek(0, 2)
        while True:
            line = handle.readline()
            if line:
                sys.stdout.write(line)
                sys.stdout.flush()
            else:
                time.sleep(0.3)
