"""Step 5: champion/challenger. A new version is compared with the champion on the same
current test set and replaces it when its RMSE is better or equal. Manual promotion and
rollback use the same records."""

from __future__ import annotations

import getpass
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from mlops_cli.errors import PromotionRefused, RegistryError
from mlops_cli.registry import alias_version, configure, resolve_version, rmse_on
from mlops_cli.storage import clean_data, engine_for, promotion_rows, read_table, record_promotion

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Engine

    from mlops_cli.settings import Settings


@dataclass
class PromotionResult:
    version: int
    promoted: bool
    champion_version: int
    previous_champion: int | None
    version_rmse: float | None
    champion_rmse: float | None
    test_rows: int
    reason: str
    reload_warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def outcome(self) -> str:
        """What happened, for the batch log: first champion, promoted (...) or kept champion (...)."""
        if self.promoted and self.previous_champion is None:
            return "first champion"
        return f"promoted ({self.reason})" if self.promoted else f"kept champion ({self.reason})"


def current_test_set(engine: Engine, up_to_batch: int | None = None) -> pd.DataFrame:
    where = clean_data.c.split == "test"
    if up_to_batch is not None:
        where = where & (clean_data.c.batch <= up_to_batch)
    return read_table(engine, clean_data, where)


def actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _move_champion(
    settings: Settings,
    client: Any,
    engine: Engine,
    version: int,
    old: int | None,
    new_rmse: float | None,
    old_rmse: float | None,
    test_rows: int,
    action: str,
    who: str,
) -> None:
    from mlops_cli.storage import now

    client.set_registered_model_alias(settings.model_name, settings.champion_alias, str(version))
    challenger = alias_version(client, settings, settings.challenger_alias)
    if challenger is not None and int(challenger.version) == version:
        client.delete_registered_model_alias(settings.model_name, settings.challenger_alias)
    client.set_model_version_tag(settings.model_name, str(version), "promoted_at", now().isoformat(timespec="seconds"))
    client.set_model_version_tag(settings.model_name, str(version), "promoted_by", who)
    record_promotion(
        engine,
        actor=who,
        action=action,
        model_name=settings.model_name,
        old_version=old,
        new_version=version,
        old_rmse=old_rmse,
        new_rmse=new_rmse,
        test_rows=test_rows,
    )


def promote_if_better(
    settings: Settings,
    version: int,
    engine: Engine | None = None,
    up_to_batch: int | None = None,
    force: bool = False,
    who: str | None = None,
    action: str = "auto",
) -> PromotionResult:
    """Make ``version`` the champion when it is at least as good on the current test set.

    The first version becomes champion outright; otherwise ``version`` becomes challenger
    and is compared. With ``force`` a worse version is promoted anyway (recorded as forced);
    without it, a manual promotion of a worse version raises :class:`PromotionRefused`.
    """
    engine = engine or engine_for(settings)
    client = configure(settings)
    who = who or actor()
    resolve_version(client, settings, version)
    champion = alias_version(client, settings, settings.champion_alias)
    test = current_test_set(engine, up_to_batch)
    if champion is None:
        rmse = rmse_on(settings, version, test) if len(test) else None
        _move_champion(settings, client, engine, version, None, rmse, None, len(test), "first", who)
        return PromotionResult(version, True, version, None, rmse, None, len(test), "first champion")
    old = int(champion.version)
    if old == version:
        return PromotionResult(
            version, False, old, old, None, None, len(test), f"version {version} is already champion"
        )
    if test.empty:
        raise RegistryError("no test rows stored: cannot compare versions", hint="train at least one batch first")
    new_rmse = rmse_on(settings, version, test)
    old_rmse = rmse_on(settings, old, test)
    if action == "auto":
        client.set_registered_model_alias(settings.model_name, settings.challenger_alias, str(version))
    better = new_rmse <= old_rmse
    comparison = (
        f"RMSE {new_rmse:,.0f} {'<=' if better else '>'} champion v{old} {old_rmse:,.0f} on {len(test)} test rows"
    )
    if not better and not force:
        if action == "manual":
            raise PromotionRefused(
                f"version {version} is worse than champion v{old}: {comparison}", hint="use --force to promote anyway"
            )
        return PromotionResult(version, False, old, old, new_rmse, old_rmse, len(test), comparison)
    kind = action if better else "forced"
    _move_champion(settings, client, engine, version, old, new_rmse, old_rmse, len(test), kind, who)
    reason = comparison if better else f"forced although {comparison}"
    return PromotionResult(version, True, version, old, new_rmse, old_rmse, len(test), reason)


def promote_challenger(settings: Settings, who: str | None = None) -> PromotionResult:
    """``mlops promote --auto``: compare the current challenger and promote it if better or equal."""
    client = configure(settings)
    challenger = alias_version(client, settings, settings.challenger_alias)
    if challenger is None:
        raise RegistryError(
            f"model {settings.model_name} has no '{settings.challenger_alias}' alias",
            hint="nothing waits for promotion",
        )
    return promote_if_better(settings, int(challenger.version), who=who, action="auto")


def champion_history(settings: Settings, engine: Engine) -> list[int]:
    """The stack of champions: promotions push, rollbacks pop."""
    stack: list[int] = []
    for row in promotion_rows(engine, settings.model_name):
        if row["action"] == "rollback":
            if stack:
                stack.pop()
        else:
            stack.append(int(row["new_version"]))
    return stack


def rollback(settings: Settings, engine: Engine | None = None, who: str | None = None) -> PromotionResult:
    """Champion back to the previous champion; recorded as a promotion with action 'rollback'."""
    engine = engine or engine_for(settings)
    client = configure(settings)
    champion = alias_version(client, settings, settings.champion_alias)
    if champion is None:
        raise RegistryError(f"model {settings.model_name} has no champion to roll back")
    stack = champion_history(settings, engine)
    if not stack or stack[-1] != int(champion.version):
        stack.append(int(champion.version))  # champion moved outside mlops: roll back from it anyway
    if len(stack) < 2:
        raise RegistryError(f"champion v{champion.version} has no previous champion to roll back to")
    current, previous = stack[-1], stack[-2]
    resolve_version(client, settings, previous)
    test = current_test_set(engine)
    new_rmse = rmse_on(settings, previous, test) if len(test) else None
    old_rmse = rmse_on(settings, current, test) if len(test) else None
    _move_champion(
        settings, client, engine, previous, current, new_rmse, old_rmse, len(test), "rollback", who or actor()
    )
    return PromotionResult(
        previous, True, previous, current, new_rmse, old_rmse, len(test), f"rolled back from v{current} to v{previous}"
    )


def request_reload(settings: Settings) -> str | None:
    """Ask the inference API to load the new champion. Returns a warning instead of failing."""
    import httpx

    url = settings.api_url.rstrip("/") + "/load_model"
    try:
        response = httpx.post(url, headers={"Authorization": f"Bearer {settings.api_token_value()}"}, timeout=30)
    except httpx.HTTPError:
        return f"inference API at {settings.api_url} is not reachable; it loads the champion when it starts"
    if response.status_code >= 400:
        return f"inference API reload failed: HTTP {response.status_code} {response.text[:200]}"
    return None
