"""Step 5: champion/challenger. A new version is compared with the champion on the same
current test set and replaces it when its RMSE is better or equal. Manual promotion and
rollback use the same records.

Every move of the champion is written to ``promotions`` first and applied to the registry
second, so the record is never missing for a move (a crash in between is repaired by moving
the alias again: the pipeline's ``finish`` step does, and a manual move can simply be rerun).
"""

from __future__ import annotations

import getpass
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from mlops_cli.errors import ModelRefused, PromotionRefused, RegistryError
from mlops_cli.pipeline.records import PromotionOutcome
from mlops_cli.pipeline.scores import TestSet, cached_metrics, cached_rmse, current_test_set
from mlops_cli.registry.light import LightRegistry
from mlops_cli.rule import METRICS, SHADOW, Clause, Verdict
from mlops_cli.store.db import engine_for
from mlops_cli.store.promotions import promotion_rows, record_promotion
from mlops_cli.store.tables import now

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Engine

    from mlops_cli.config import Settings


@dataclass(kw_only=True)
class PromotionResult:
    version: int
    promoted: bool
    champion_version: int
    previous_champion: int | None
    version_rmse: float | None
    champion_rmse: float | None
    test_rows: int
    reason: str
    action: str = "auto"
    reload_warning: str | None = None
    # the rule that decided, both versions' metrics on the same test rows, the change of each
    # metric in % of the champion's, and each clause's verdict (None: no comparison was made)
    rule: str | None = None
    candidate_metrics: dict[str, float] | None = None
    champion_metrics: dict[str, float] | None = None
    deltas: dict[str, float | None] | None = None
    verdict: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def outcome(self) -> PromotionOutcome:
        """What happened, in a word: first, promoted, forced, rejected, already (champion)."""
        if self.action == "first":
            return PromotionOutcome.FIRST
        if not self.promoted:
            return PromotionOutcome.ALREADY if self.previous_champion == self.version else PromotionOutcome.REJECTED
        return PromotionOutcome.FORCED if self.action == "forced" else PromotionOutcome.PROMOTED

    def record(self) -> dict[str, Any]:
        """What the batch log keeps of this decision (``promotion``)."""
        return {
            "outcome": self.outcome,
            "promoted": self.promoted,
            "rule": self.rule,
            "candidate": self.version,
            "champion": self.previous_champion,
            "candidate_metrics": self.candidate_metrics,
            "champion_metrics": self.champion_metrics,
            "deltas": self.deltas,
            "deciding": (self.verdict or {}).get("deciding"),
            "clauses": (self.verdict or {}).get("clauses"),
            "test_rows": self.test_rows,
            "why": self.reason,
        }


def actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def compare(
    registry: LightRegistry,
    settings: Settings,
    version: int,
    test: TestSet | pd.DataFrame,
    *,
    force: bool = False,
    action: str = "auto",
    engine: Engine | None = None,
) -> PromotionResult:
    """Should ``version`` become champion? Decided on ``test``; nothing is moved or recorded.

    The first version becomes champion outright. A worse version is promoted only with
    ``force`` (recorded as forced); a manual promotion of a worse version without it raises
    :class:`PromotionRefused`.
    """
    from mlops_cli.registry.signing import unsigned_reason

    test = TestSet.of(test)
    candidate = registry.version(version)
    refused = unsigned_reason(settings, candidate, registry)  # before any score: a remembered one loads nothing
    if refused is not None:
        raise ModelRefused(f"not promoted: {refused}", hint="only versions mlops training signed can be champion")
    champion = registry.alias_version(settings.champion_alias)
    if champion is None:
        scores = cached_metrics(settings, engine, version, candidate.run_id, test) if len(test) else None
        return PromotionResult(
            version=version,
            promoted=True,
            champion_version=version,
            previous_champion=None,
            version_rmse=None if scores is None else scores["rmse"],
            champion_rmse=None,
            test_rows=len(test),
            reason="first champion",
            action="first",
            rule=settings.rule().text(),
            candidate_metrics=scores,
        )
    old = int(champion.version)
    if old == version:
        return PromotionResult(
            version=version,
            promoted=False,
            champion_version=old,
            previous_champion=old,
            version_rmse=None,
            champion_rmse=None,
            test_rows=len(test),
            reason=f"version {version} is already champion",
            action=action,
        )
    if not len(test):
        raise RegistryError("no test rows stored: cannot compare versions", hint="train at least one batch first")
    rule = settings.rule()
    new = cached_metrics(settings, engine, version, candidate.run_id, test)
    distrusted = unsigned_reason(settings, champion, registry)  # never loaded, never scored: replaced
    old_scores = None if distrusted else cached_metrics(settings, engine, old, champion.run_id, test)
    if SHADOW in rule.metrics:  # evidence from live traffic: requests v{old} answered, v{version} shadowed
        from mlops_cli.store.db import engine_for
        from mlops_cli.store.events import shadow_requests

        seen = float(shadow_requests(engine or engine_for(settings), old, version))
        new = {**new, SHADOW: seen}
        old_scores = None if old_scores is None else {**old_scores, SHADOW: 0.0}
    verdict = None
    rows = f"on {len(test)} test rows"
    if distrusted:
        better, comparison = True, f"champion v{old} cannot be trusted: {distrusted}"
    elif not all(math.isfinite(new[m]) for m in rule.metrics):  # NaN never decides silently
        better, comparison = False, f"v{version}'s {_not_finite(new, rule.metrics)} {rows} is not a finite number"
    elif not all(math.isfinite(old_scores[m]) for m in rule.metrics):
        better = True
        comparison = f"champion v{old}'s {_not_finite(old_scores, rule.metrics)} {rows} is not a finite number"
    else:
        verdict = rule.apply(new, old_scores)
        better = verdict.passed
        comparison = _said(verdict, old, rows)
    if not better and not force and action == "manual":
        raise PromotionRefused(
            f"version {version} does not pass the promotion rule against champion v{old}: {comparison}",
            hint="use --force to promote anyway",
        )
    promoted = better or force
    return PromotionResult(
        version=version,
        promoted=promoted,
        champion_version=version if promoted else old,
        previous_champion=old,
        version_rmse=new["rmse"],
        champion_rmse=None if old_scores is None else old_scores["rmse"],
        test_rows=len(test),
        reason=comparison if better or not promoted else f"forced although {comparison}",
        action=action if better else ("forced" if promoted else action),
        rule=rule.text(),
        candidate_metrics=new,
        champion_metrics=old_scores,
        deltas=None if old_scores is None else changes(new, old_scores),
        verdict=None if verdict is None else verdict.to_dict(),
    )


def changes(candidate: dict[str, float], champion: dict[str, float]) -> dict[str, float | None]:
    """Each metric's change, in % of the champion's (None where that is not a finite number)."""
    out: dict[str, float | None] = {}
    for metric in METRICS:
        if metric in candidate and metric in champion:
            change = Clause(metric, "<=", 0, relative=True).change(candidate[metric], champion[metric])
            out[metric] = round(change, 4) if math.isfinite(change) else None
    return out


def _not_finite(scores: dict[str, float], metrics: tuple[str, ...]) -> str:
    return ", ".join(f"{m.upper()} ({scores[m]})" for m in metrics if not math.isfinite(scores[m]))


def _said(verdict: Verdict, old: int, rows: str) -> str:
    """The verdict in a sentence: the deciding clause with both values and the change."""
    shown = [c for c in verdict.clauses if not c["holds"]][:1] or verdict.clauses
    parts = []
    for c in shown:
        if c["metric"] == SHADOW:
            parts.append(f"{c['candidate']:,.0f} live request(s) priced in shadow of champion v{old}")
            continue
        change = "n/a" if c["change"] is None else f"{c['change']:+.1f}%" if c["relative"] else f"{c['change']:+.4g}"
        said = "{:,.0f}" if c["metric"] in ("mae", "rmse") else "{:.4f}"
        values = f"{said.format(c['candidate'])} vs champion v{old} {said.format(c['champion'])}"
        parts.append(f"{c['metric'].upper()} {values} ({change})")
    held = "passes" if verdict.passed else "fails"
    return f"{held} {verdict.deciding!r}: {'; '.join(parts)} {rows}"


def record(conn: Any, settings: Settings, result: PromotionResult, who: str, round_id: int | None = None) -> None:
    """The promotion row of a move decided by :func:`compare` (call inside the step's transaction):
    the rule it was decided by, both versions' metrics, the deltas and each clause's verdict."""
    from mlops_cli.store.rounds import plain

    detail = {
        k: v
        for k, v in result.record().items()
        if k in ("candidate_metrics", "champion_metrics", "deltas", "clauses", "deciding", "why")
    }
    record_promotion(
        conn,
        actor=who,
        action=result.action,
        model_name=settings.model_name,
        old_version=result.previous_champion,
        new_version=result.version,
        old_rmse=result.champion_rmse,
        new_rmse=result.version_rmse,
        test_rows=result.test_rows,
        round=round_id,
        rule=result.rule,
        detail=plain(detail),
    )


def move_champion(registry: LightRegistry, settings: Settings, version: int, who: str, why: str | None = None) -> None:
    """Point ``champion`` at ``version`` (idempotent); it stops being the challenger. Its MLflow
    description says when, by whom and why it became champion."""
    registry.set_alias(settings.champion_alias, version)
    if why:
        current = registry.version(version).description or ""
        stamp = f"Champion since {now().isoformat(timespec='seconds')}, by {who}: {why}."
        registry.set_description(version, f"{current.split(' Champion since')[0]} {stamp}".strip())
    challenger = registry.alias_version(settings.challenger_alias)
    if challenger is not None and int(challenger.version) == version:
        registry.delete_alias(settings.challenger_alias)
    registry.set_tag(version, "promoted_at", now().isoformat(timespec="seconds"))
    registry.set_tag(version, "promoted_by", who)


def _promote_now(
    settings: Settings, engine: Engine, registry: LightRegistry, result: PromotionResult, who: str
) -> None:
    if result.promoted:
        with engine.begin() as conn:
            record(conn, settings, result, who)
        move_champion(registry, settings, result.version, who, result.reason)


def _reloaded(settings: Settings, result: PromotionResult, reload_api: bool) -> PromotionResult:
    """After a move (the lock released): ask the inference API to load the new champion; an API
    that cannot is a warning in the result, never a failure of the move."""
    if result.promoted and reload_api:
        from mlops_cli.pipeline.api_client import request_reload

        result.reload_warning = request_reload(settings)
    return result


@contextmanager
def _writing(settings: Settings, wait_lock: bool) -> Iterator[tuple[Engine, LightRegistry]]:
    """The data DB and the registry, with the data DB's writer lock held (one mover at a time)."""
    from mlops_cli.store.locking import writer_lock

    engine = engine_for(settings)
    registry = LightRegistry(settings)
    with writer_lock(engine, wait=wait_lock):
        yield engine, registry


def promote_if_better(
    settings: Settings,
    version: int,
    *,
    force: bool = False,
    who: str | None = None,
    wait_lock: bool = False,
    reload_api: bool = False,
) -> PromotionResult:
    """``mlops promote N``: make ``version`` champion when it is at least as good on the current
    test set (or anyway, with ``force``). Holds the data DB's writer lock while it decides;
    ``reload_api``: then asks the inference API to load the new champion."""
    LightRegistry(settings).version(version)  # an unknown version is said before the lock is taken
    with _writing(settings, wait_lock) as (engine, registry):
        result = compare(
            registry, settings, version, current_test_set(engine), force=force, action="manual", engine=engine
        )
        _promote_now(settings, engine, registry, result, who or actor())
    return _reloaded(settings, result, reload_api)


def promote_challenger(
    settings: Settings, who: str | None = None, wait_lock: bool = False, reload_api: bool = False
) -> PromotionResult:
    """``mlops promote --auto``: compare the current challenger and promote it if better or equal."""
    with _writing(settings, wait_lock) as (engine, registry):
        challenger = registry.alias_version(settings.challenger_alias)
        if challenger is None:
            raise RegistryError(
                f"model {settings.model_name} has no '{settings.challenger_alias}' alias",
                hint="nothing waits for promotion",
            )
        result = compare(registry, settings, int(challenger.version), current_test_set(engine), engine=engine)
        _promote_now(settings, engine, registry, result, who or actor())
    return _reloaded(settings, result, reload_api)


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


def rollback(
    settings: Settings,
    who: str | None = None,
    wait_lock: bool = False,
    confirm_worse: Callable[[PromotionResult], bool] | None = None,
    reload_api: bool = False,
) -> PromotionResult:
    """Champion back to the previous champion; recorded as a promotion with action 'rollback'.
    When the previous champion scores worse on today's test set, ``confirm_worse`` decides (no
    callback: roll back anyway); a refusal raises :class:`PromotionRefused` and moves nothing."""
    with _writing(settings, wait_lock) as (engine, registry):
        champion = registry.alias_version(settings.champion_alias)
        if champion is None:
            raise RegistryError(f"model {settings.model_name} has no champion to roll back")
        stack = champion_history(settings, engine)
        if not stack or stack[-1] != int(champion.version):
            stack.append(int(champion.version))  # champion moved outside mlops: roll back from it anyway
        if len(stack) < 2:
            raise RegistryError(f"champion v{champion.version} has no previous champion to roll back to")
        current, previous = stack[-1], stack[-2]
        from mlops_cli.registry.signing import unsigned_reason

        target = registry.version(previous)
        serving = registry.version(current)
        refused = unsigned_reason(settings, target, registry)
        if refused is not None:
            raise ModelRefused(f"not rolled back: {refused}", hint="`mlops promote N` a version mlops signed")
        serving_trusted = unsigned_reason(settings, serving, registry) is None  # an untrusted one is never loaded
        test = current_test_set(engine)
        result = PromotionResult(
            version=previous,
            promoted=True,
            champion_version=previous,
            previous_champion=current,
            version_rmse=cached_rmse(settings, engine, previous, target.run_id, test) if len(test) else None,
            champion_rmse=cached_rmse(settings, engine, current, serving.run_id, test)
            if len(test) and serving_trusted
            else None,
            test_rows=len(test),
            reason=f"rolled back from v{current} to v{previous}",
            action="rollback",
        )
        worse = None not in (result.version_rmse, result.champion_rmse) and result.version_rmse > result.champion_rmse
        if worse and confirm_worse is not None and not confirm_worse(result):
            raise PromotionRefused(
                f"not rolled back: v{previous} scores worse than v{current} on today's test set "
                f"(RMSE {result.version_rmse:,.0f} > {result.champion_rmse:,.0f} on {result.test_rows} rows)",
                hint="pass --yes to roll back anyway",
            )
        _promote_now(settings, engine, registry, result, who or actor())
    return _reloaded(settings, result, reload_api)
