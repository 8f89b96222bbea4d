"""`mlops promote` and `mlops rollback`: move the champion alias by hand."""

from __future__ import annotations

from typing import Annotated

import typer

from mlops_cli.cli.application import Application, application, money
from mlops_cli.cli.options import JsonOption, ReloadApiOption, WaitLockOption


def _report(app: Application, result, as_json: bool) -> None:  # noqa: ANN001 — a PromotionResult
    data = result.to_dict()
    if as_json:
        app.print_json(data)
        return
    if data.get("reload_warning"):
        app.warn(data["reload_warning"])
    if result.previous_champion is not None and result.version_rmse is not None:
        app.out.print(
            f"v{result.version} RMSE {money(result.version_rmse)}  vs  champion v{result.previous_champion} "
            f"RMSE {money(result.champion_rmse)}  ({result.test_rows} test rows)",
            highlight=False,
        )
    if result.action == "rollback":
        app.out.print(
            f"[green]rolled back[/green]: champion v{result.previous_champion} → v{result.version}", highlight=False
        )
        if None not in (result.version_rmse, result.champion_rmse) and result.version_rmse > result.champion_rmse:
            app.warn(f"v{result.version} scores worse than v{result.previous_champion} on today's test set")
        return
    verdict = "[green]promoted[/green]" if result.promoted else "not promoted"
    app.out.print(f"{verdict}: {result.reason}. champion is v{result.champion_version}", highlight=False)


def promote(
    ctx: typer.Context,
    version: Annotated[
        int | None, typer.Argument(help="The version to make champion.", min=1, show_default=False)
    ] = None,
    auto: Annotated[
        bool, typer.Option("--auto", help="Promote the challenger if its RMSE is better or equal.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Promote even when the version is worse.")] = False,
    reload_api: ReloadApiOption = True,
    wait_lock: WaitLockOption = False,
    as_json: JsonOption = False,
) -> None:
    """Make a version the champion, after comparing both on the current test set."""
    from mlops_cli.pipeline.promote import promote_challenger, promote_if_better

    app = application(ctx)
    if (version is None) == (not auto):
        raise typer.BadParameter("give a VERSION or --auto", param_hint="VERSION/--auto")
    config = app.settings()
    if auto:
        result = promote_challenger(config, wait_lock=wait_lock, reload_api=reload_api)
    else:
        result = promote_if_better(config, version, force=force, wait_lock=wait_lock, reload_api=reload_api)
    _report(app, result, as_json)


def rollback(
    ctx: typer.Context,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Roll back even when the previous champion scores worse today.")
    ] = False,
    reload_api: ReloadApiOption = True,
    wait_lock: WaitLockOption = False,
    as_json: JsonOption = False,
) -> None:
    """Move the champion back to the previous champion (asks first if that one scores worse today)."""
    import sys

    from mlops_cli.pipeline.promote import rollback as rollback_champion

    app = application(ctx)

    def confirm(result) -> bool:  # noqa: ANN001
        if yes:
            return True
        if not sys.stdin.isatty() or as_json:
            return False
        return typer.confirm(
            f"v{result.version} scores worse than champion v{result.previous_champion} on today's test set "
            f"(RMSE {money(result.version_rmse)} vs {money(result.champion_rmse)}). Roll back anyway?",
            err=True,
        )

    result = rollback_champion(app.settings(), wait_lock=wait_lock, confirm_worse=confirm, reload_api=reload_api)
    _report(app, result, as_json)
