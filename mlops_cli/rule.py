"""The promotion rule: when a challenger replaces the champion, as a short text people can read.

``MLOPS_PROMOTE_RULE`` is one or more clauses joined by ``and``, each a metric, a comparison and
a change of the challenger against the champion on the same test set::

    rmse <= 0%                      # the default: RMSE better or equal
    mae <= -3% and rmse <= +1%      # MAE at least 3 % lower, RMSE at most 1 % higher
    r2 >= +0.01                     # R² at least 0.01 higher (no %: a difference of values)
    rmse <= 0% and shadow >= 200    # and priced in shadow on at least 200 live requests first

A change with ``%`` is relative to the champion's value, one without is the plain difference.
``shadow`` is evidence, not a metric: the number of live requests the champion answered while
the challenger priced them in shadow (the inference events; ``MLOPS_API_SHADOW_SHARE``). The loop
compares right after training, before any shadow traffic, so such a rule keeps the new version
as challenger; ``mlops promote --auto`` promotes it once the evidence is in.
The rule is parsed once, when settings load (a malformed one is refused there), and every
decision keeps the rule, each clause's change and verdict, and the clause that decided.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from typing import Any

# The metrics a clause may name (regression_metrics' keys); lower is better but for R².
METRICS = ("mae", "rmse", "mape", "r2")
SHADOW = "shadow"  # the evidence a clause may ask for: live requests priced in shadow
_COMPARISONS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}
_CLAUSE = re.compile(r"^\s*([a-z0-9_]+)\s*(<=|>=|<|>)\s*([+-]?\d+(?:\.\d+)?)\s*(%?)\s*$", re.IGNORECASE)
DEFAULT_RULE = "rmse <= 0%"


@dataclass(frozen=True)
class Clause:
    metric: str
    comparison: str
    limit: float
    relative: bool  # the limit is a percentage of the champion's value

    def text(self) -> str:
        unit = "%" if self.relative else ""
        return f"{self.metric} {self.comparison} {self.limit:+g}{unit}"

    def change(self, candidate: float, champion: float) -> float:
        """The challenger's change on this clause's metric: in % of the champion's, or plain."""
        if not self.relative:
            return candidate - champion
        if champion == 0:
            return 0.0 if candidate == 0 else math.copysign(math.inf, candidate)
        return (candidate - champion) / abs(champion) * 100

    def holds(self, change: float) -> bool:
        return math.isfinite(change) and _COMPARISONS[self.comparison](change, self.limit)


@dataclass(frozen=True)
class Verdict:
    """A rule applied: passed or not, each clause's change, and the clause that decided."""

    passed: bool
    clauses: list[dict[str, Any]]
    deciding: str  # the first clause that failed, or the whole rule when every clause held

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "clauses": self.clauses, "deciding": self.deciding}


@dataclass(frozen=True)
class Rule:
    clauses: tuple[Clause, ...]

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.metric for c in self.clauses))

    def text(self) -> str:
        return " and ".join(c.text() for c in self.clauses)

    def apply(self, candidate: dict[str, float], champion: dict[str, float]) -> Verdict:
        """Does ``candidate`` (metrics) pass against ``champion`` (metrics on the same rows)?"""
        results = []
        for clause in self.clauses:
            change = clause.change(candidate[clause.metric], champion[clause.metric])
            results.append(
                {
                    "clause": clause.text(),
                    "metric": clause.metric,
                    "candidate": candidate[clause.metric],
                    "champion": champion[clause.metric],
                    "change": change if math.isfinite(change) else None,
                    "relative": clause.relative,
                    "holds": clause.holds(change),
                }
            )
        failed = next((r["clause"] for r in results if not r["holds"]), None)
        return Verdict(passed=failed is None, clauses=results, deciding=failed or self.text())


def parse_rule(text: str) -> Rule:
    """``"mae <= -3% and rmse <= +1%"`` → a :class:`Rule`; ValueError says what is wrong."""
    if not text or not text.strip():
        raise ValueError(f"the promotion rule is empty (e.g. {DEFAULT_RULE!r})")
    clauses = []
    for part in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        match = _CLAUSE.match(part)
        if match is None:
            raise ValueError(
                f"cannot read {part.strip()!r} in the promotion rule: each clause is METRIC OP CHANGE, "
                f"e.g. 'mae <= -3%' (metrics: {', '.join(METRICS)}; OP: <=, <, >=, >; clauses joined by 'and')"
            )
        metric, comparison, limit, percent = match.groups()
        if metric.lower() == SHADOW:
            if percent or comparison not in (">=", ">") or float(limit) < 0:
                raise ValueError(f"{part.strip()!r}: shadow evidence is a number of requests, e.g. 'shadow >= 200'")
        elif metric.lower() not in METRICS:
            raise ValueError(
                f"unknown metric {metric!r} in the promotion rule (known: {', '.join(METRICS)}; and {SHADOW})"
            )
        clauses.append(Clause(metric.lower(), comparison, float(limit), relative=bool(percent)))
    return Rule(tuple(clauses))


def describe_changes(changes: dict[str, float | None]) -> str:
    """``{"mae": -6.1, "rmse": 0.4}`` (in %) → ``"MAE −6.1 %, RMSE +0.4 %"``."""
    said = []
    for metric, change in changes.items():
        if change is not None:
            said.append(f"{metric.upper() if metric != 'r2' else 'R²'} {change:+.1f} %".replace("-", "−"))
    return ", ".join(said)
