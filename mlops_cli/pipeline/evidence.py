"""What a training run leaves in MLflow beside the model, so that a version explains itself: the
code version, the validation report that led to it, a predicted-vs-actual and a residuals plot,
feature importance (permutation, and the mean |contribution| of the explanations /predict gives),
and a short model card.

Everything is written into one folder and logged as the run's ``audit/`` artifacts.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_cli.schema import FEATURES, TARGET

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.base import BaseEstimator

ARTIFACTS = (
    "validation_report.json",
    "predicted_vs_actual.png",
    "residuals.png",
    "feature_importance.json",
    "model_card.md",
)


@cache
def code_version() -> dict[str, str]:
    """The package version, and the git commit when run from a checkout (``unknown`` otherwise)."""
    import subprocess
    from importlib.metadata import PackageNotFoundError, version

    try:
        package = version("mlops")
    except PackageNotFoundError:
        package = "unknown"
    checkout = Path(__file__).resolve().parents[2]
    commit = "unknown"
    if (checkout / ".git").exists():
        try:
            done = subprocess.run(
                ["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
            )
            if done.returncode == 0:
                commit = done.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return {"code_version": package, "git_commit": commit}


def feature_importance(model: BaseEstimator, rows: pd.DataFrame, seed: int) -> dict[str, Any]:
    """Permutation importance on ``rows`` (the rise in RMSE when a feature is shuffled), for any
    model; and for a linear one its coefficients per encoded column."""
    from sklearn.inspection import permutation_importance

    sample = rows.sample(min(len(rows), 2000), random_state=seed) if len(rows) else rows
    out: dict[str, Any] = {"method": "permutation (RMSE increase)", "rows": len(sample), "features": {}}
    if len(sample) >= 2:
        found = permutation_importance(
            model,
            sample[FEATURES],
            sample[TARGET].to_numpy(),
            scoring="neg_root_mean_squared_error",
            n_repeats=3,
            random_state=seed,
        )
        out["features"] = {
            name: {"mean": float(m), "std": float(s)}
            for name, m, s in sorted(
                zip(FEATURES, found.importances_mean, found.importances_std, strict=True), key=lambda t: -t[1]
            )
        }
    coefficients = _coefficients(model)
    if coefficients:
        out["coefficients"] = coefficients
    return out


def _coefficients(model: BaseEstimator) -> dict[str, float] | None:
    """A linear model's coefficients by encoded column (the 40 largest in size), else None."""
    last = getattr(model, "steps", [[None, model]])[-1][1]
    regressor = getattr(last, "regressor_", last)
    inner = getattr(regressor, "steps", [[None, regressor]])[-1][1]
    if not hasattr(inner, "coef_"):
        return None
    try:
        names = model[:-1].get_feature_names_out()
    except (AttributeError, TypeError, ValueError, IndexError):
        names = [f"x{i}" for i in range(len(np.ravel(inner.coef_)))]
    pairs = sorted(zip(names, np.ravel(inner.coef_), strict=False), key=lambda t: -abs(t[1]))[:40]
    return {str(n): float(c) for n, c in pairs}


def _plots(folder: Path, actual: np.ndarray, predicted: np.ndarray, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(actual, predicted, s=6, alpha=0.4)
    edge = [float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))]
    ax.plot(edge, edge, color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="actual price", ylabel="predicted price", title=f"{title}: predicted vs actual")
    fig.tight_layout()
    fig.savefig(folder / "predicted_vs_actual.png", dpi=80)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(predicted, actual - predicted, s=6, alpha=0.4)
    ax.axhline(0, color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="predicted price", ylabel="actual − predicted", title=f"{title}: residuals")
    fig.tight_layout()
    fig.savefig(folder / "residuals.png", dpi=80)
    plt.close(fig)


def model_card(tags: dict[str, str], metrics: dict[str, dict[str, float]], audit: dict[str, Any]) -> str:
    """A short Markdown card: the data, the model, its metrics, the rule and the decision."""
    lines = [
        f"# {tags.get('model_type', 'model')} trained by mlops",
        "",
        "## Data",
        f"- dataset {tags.get('dataset', '?')}, batches {tags.get('batches', '?')} (round {tags.get('round', '?')})",
        f"- {int(tags.get('rows_train', 0) or 0):,} training rows, {tags.get('rows_test', '?')} test rows",
        "",
        "## Model",
        f"- {tags.get('model_type', '?')}" + (f" ({tags['chosen_by']})" if tags.get("chosen_by") else ""),
        f"- code {tags.get('code_version', '?')}, commit {tags.get('git_commit', '?')}",
        "",
        "## Metrics",
        "| rows | MAE | RMSE | MAPE | R² |",
        "|---|---|---|---|---|",
    ]
    for part, scores in metrics.items():
        lines.append(
            f"| {part} | {scores['mae']:,.0f} | {scores['rmse']:,.0f} | {scores['mape']:.3f} | {scores['r2']:.3f} |"
        )
    lines += [
        "",
        "## Decision",
        f"- trained because: {audit.get('why') or 'asked for'}",
        f"- promotion rule: `{audit.get('rule', '?')}` (the challenger is compared with the champion on the same "
        "test rows; see the batch log for the verdict)",
    ]
    return "\n".join(lines) + "\n"


def write_evidence(
    folder: Path,
    *,
    model: BaseEstimator,
    train: pd.DataFrame,
    test: pd.DataFrame,
    validation_rows: pd.DataFrame,
    tags: dict[str, str],
    metrics: dict[str, dict[str, float]],
    audit: dict[str, Any],
    seed: int,
) -> list[str]:
    """Every artifact of :data:`ARTIFACTS` into ``folder``; returns their names."""
    folder.mkdir(parents=True, exist_ok=True)
    from mlops_cli.store.rounds import plain

    (folder / "validation_report.json").write_text(json.dumps(plain(audit.get("validation") or {}), indent=2))
    scored = test if len(test) else train
    predicted = model.predict(scored[FEATURES])
    _plots(folder, scored[TARGET].to_numpy(dtype=float), np.asarray(predicted, dtype=float), tags.get("model_type", ""))
    rows = validation_rows if len(validation_rows) else scored
    importance = feature_importance(model, rows, seed)
    from mlops_cli.pipeline.explain import importance as contribution_importance

    # global importance from the exact per-listing contributions /predict explains (None: no exact ones)
    importance["mean_abs_contribution"] = contribution_importance(model, rows)
    (folder / "feature_importance.json").write_text(json.dumps(importance, indent=2))
    (folder / "model_card.md").write_text(model_card(tags, metrics, audit))
    return list(ARTIFACTS)
