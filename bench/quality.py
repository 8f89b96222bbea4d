"""Model quality on a realtor CSV: every candidate, the `auto` choice and the seed recipe, one split.

    python bench/quality.py CSV [--seed 42] [--splits 5] [--fit-rows 200000]

The CSV is either release of the public "USA Real Estate" data (2022: no brokered_by/street;
2024: with them). Rows go through the loop's own normalisation and cleaning (invalid rows,
outliers and exact duplicates dropped), then one stratified 85/15 split by price quartile.
Each model is fitted on the 85 % and scored on the 15 %; `auto` chooses among the candidates
on a validation part of the 85 % only, as the loop does. Printed per model: MAE, RMSE, median
absolute error, R², the lowest prediction, fit seconds and one-row predict microseconds, and
each MAE as a ratio of the seed recipe's (`linear`) fitted on the same cleaned rows — the fair
yardstick. The models differ by one thing each: `hgb` (scikit-learn's trees, text as native
categories; not an `auto` candidate: it cannot explain its prices), `lgbm_geo` (LightGBM + where
the zip is: latitude, longitude, county), `lgbm_local` (+ the area's prices from the training
rows), so their rows are each feature set's effect.

Then, per candidate: its 80 % range calibrated on the validation rows (split conformal) and the
share of test listings inside it with the median width; one-row explain microseconds (exact
contributions, where the model has them); and what `auto` chooses by validation MAE and by
validation RMSE (`MLOPS_SELECT_METRIC`) with the test MAE/RMSE of each choice. Ratios matter;
seconds depend on the machine.

A ratio measured on one test set of a few hundred listings moves with the few mansions in it, so
the auto-vs-seed MAE ratio is also given with a 95 % bootstrap interval over the test rows, and
(``--splits N``) on N further splits (seeds SEED+1 ... SEED+N: other test rows, each choice and
fit redone on its own training rows), with their mean.

Last, what a retrain costs at scale: every model fitted on ``--fit-rows`` training rows (default
200,000: the CSV's clean training rows drawn again with replacement when it has fewer; 0 skips
it), two interleaved rounds, the faster of each, as a ratio of `hgb`'s fit in the same run (goal:
the `auto` candidates within 3x).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd


def rows_of(path: Path, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from mlops_cli.pipeline.clean import clean_rows
    from mlops_cli.schema import COLUMNS, normalise

    raw = pd.read_csv(path, dtype={"zip_code": str})
    for column in COLUMNS:  # the 2022 release lacks brokered_by and street
        if column not in raw.columns:
            raw[column] = None
    kept = clean_rows(normalise(raw, str(path)), np.array([], dtype=np.int64), test_size=0.15, seed=seed).kept
    return kept[kept["split"] == "train"], kept[kept["split"] == "test"]


def one_row_micros(model: object, row: pd.DataFrame, repeat: int = 50) -> float:
    model.predict(row)
    start = time.perf_counter()
    for _ in range(repeat):
        model.predict(row)
    return (time.perf_counter() - start) / repeat * 1e6


def auto_vs_seed(
    settings: object, train: pd.DataFrame, test: pd.DataFrame, seed: int
) -> tuple[str, np.ndarray, np.ndarray]:
    """What `auto` chooses on ``train`` and the absolute test errors of it and of the seed recipe."""
    from mlops_cli.pipeline.fit import build_pipeline, choose_model
    from mlops_cli.schema import FEATURES, TARGET

    chosen = choose_model(settings, train).model_type
    truth = test[TARGET].to_numpy()
    errors = []
    for name in (chosen, "linear"):
        model = build_pipeline(settings.max_categories, name, seed).fit(train[FEATURES], train[TARGET])
        errors.append(np.abs(model.predict(test[FEATURES]) - truth))
    return chosen, errors[0], errors[1]


def bootstrap_ratio(ours: np.ndarray, theirs: np.ndarray, rounds: int = 5000) -> tuple[float, float]:
    """95 % interval of sum(ours) / sum(theirs) over test rows drawn with replacement (seeded)."""
    rng = np.random.default_rng(0)
    drawn = rng.integers(0, len(ours), size=(rounds, len(ours)))
    ratios = ours[drawn].sum(axis=1) / theirs[drawn].sum(axis=1)
    return float(np.quantile(ratios, 0.025)), float(np.quantile(ratios, 0.975))


def fit_cost(settings: object, train: pd.DataFrame, rows: int, seed: int, rounds: int = 2) -> dict[str, float]:
    """Seconds to fit each model on ``rows`` training rows (the faster of ``rounds`` interleaved)."""
    from mlops_cli.pipeline.fit import MODEL_TYPES, build_pipeline
    from mlops_cli.schema import FEATURES, TARGET

    drawn = train.sample(rows, replace=len(train) < rows, random_state=seed)
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name in MODEL_TYPES:
            model = build_pipeline(settings.max_categories, name, seed)
            start = time.perf_counter()
            model.fit(drawn[FEATURES], drawn[TARGET])
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path)
    parser.add_argument("--seed", type=int, default=42, help="split seed (the loop's MLOPS_SPLIT_SEED)")
    parser.add_argument("--splits", type=int, default=0, help="also measure auto vs seed on N further splits")
    parser.add_argument(
        "--fit-rows", type=int, default=200_000, help="training rows of the retrain-cost measure (0: skip it)"
    )
    args = parser.parse_args()
    if not args.csv.is_file():
        sys.exit(f"no such file: {args.csv}")
    if args.splits < 0:
        sys.exit("--splits is a number of further splits (0 or more)")
    if args.fit_rows < 0:
        sys.exit("--fit-rows is a number of training rows (0 or more)")

    from mlops_cli.config import load_settings
    from mlops_cli.pipeline.fit import CANDIDATES, MODEL_TYPES, build_pipeline, choose_model
    from mlops_cli.registry.scoring import regression_metrics
    from mlops_cli.schema import FEATURES, TARGET

    settings = load_settings(split_seed=args.seed, model="auto")
    train, test = rows_of(args.csv, args.seed)
    print(f"{args.csv.name}: {len(train):,} training rows, {len(test):,} test rows (after cleaning and dedup)")
    choice = choose_model(settings, train)
    results, errors = {}, {}
    for name in MODEL_TYPES:
        model = build_pipeline(settings.max_categories, name, args.seed)
        start = time.perf_counter()
        model.fit(train[FEATURES], train[TARGET])
        fit_s = time.perf_counter() - start
        predicted = model.predict(test[FEATURES])
        metrics = regression_metrics(test[TARGET].to_numpy(), predicted)
        metrics["medae"] = float(np.median(np.abs(predicted - test[TARGET].to_numpy())))
        metrics.update(lowest=float(predicted.min()), fit_s=fit_s, one_row_us=one_row_micros(model, test[FEATURES][:1]))
        results[name] = metrics
        errors[name] = np.abs(predicted - test[TARGET].to_numpy())
    seed_mae = results["linear"]["mae"]
    print(f"{'model':<16}{'MAE':>12}{'RMSE':>12}{'MedAE':>12}{'R²':>8}", end="")
    print(f"{'lowest':>14}{'fit s':>8}{'1 row µs':>10}{'MAE/seed':>10}")
    for name, m in results.items():
        label = name + (" (seed)" if name == "linear" else "") + (" ← auto" if name == choice.model_type else "")
        print(
            f"{label:<16}{m['mae']:>12,.0f}{m['rmse']:>12,.0f}{m['medae']:>12,.0f}{m['r2']:>8.3f}"
            f"{m['lowest']:>14,.0f}{m['fit_s']:>8.2f}{m['one_row_us']:>10,.0f}{m['mae'] / seed_mae:>9.2f}x"
        )
    from mlops_cli.pipeline.explain import NotExplainable, explainer_for
    from mlops_cli.pipeline.interval import coverage

    print(f"\n{'model':<16}{'80% range: test coverage':>26}{'median width':>16}{'explain 1 row µs':>18}")
    for name in MODEL_TYPES:
        ranged = choose_model(settings, train, (name,))
        model = build_pipeline(settings.max_categories, name, args.seed).fit(train[FEATURES], train[TARGET])
        covered = coverage(ranged.interval, test[TARGET].to_numpy(), model.predict(test[FEATURES]))
        try:
            explainer = explainer_for(model)
            row = test[FEATURES][:1]
            price = model.predict(row)
            explainer.explain(row, price)
            start = time.perf_counter()
            for _ in range(50):
                explainer.explain(row, price)
            explain_us = f"{(time.perf_counter() - start) / 50 * 1e6:,.0f}"
        except NotExplainable:
            explain_us = "none (exact)"
        print(
            f"{name:<16}{covered['interval_coverage']:>26.1%}{covered['interval_median_width']:>16,.0f}{explain_us:>18}"
        )
    print()
    for metric in ("mae", "rmse"):
        chosen = (
            choice
            if metric == settings.select_metric
            else choose_model(load_settings(split_seed=args.seed, model="auto", select_metric=metric), train)
        )
        m = results[chosen.model_type]
        scores = ", ".join(f"{k} {v[metric]:,.0f}" for k, v in chosen.validation.items())
        print(
            f"auto by validation {metric.upper()}: {chosen.model_type} → test MAE {m['mae']:,.0f} "
            f"({m['mae'] / seed_mae:.2f}x seed), RMSE {m['rmse']:,.0f} [{scores}]"
        )
    ours, theirs = results[choice.model_type]["mae"], seed_mae
    low, high = bootstrap_ratio(errors[choice.model_type], errors["linear"])  # the models fitted above
    print(f"\nauto vs seed MAE on these {len(test)} test rows: {ours / theirs:.3f}x", end=" ")
    print(f"(95 % bootstrap {low:.3f}-{high:.3f}x)")
    if args.splits:
        ratios = [ours / theirs]
        for seed in range(args.seed + 1, args.seed + 1 + args.splits):
            other = load_settings(split_seed=seed, model="auto")
            train_s, test_s = rows_of(args.csv, seed)
            chosen, mine, seeds = auto_vs_seed(other, train_s, test_s, seed)
            ratios.append(mine.sum() / seeds.sum())
            low, high = bootstrap_ratio(mine, seeds)
            print(f"  split seed {seed}: {chosen} {ratios[-1]:.3f}x (95 % bootstrap {low:.3f}-{high:.3f}x)")
        print(f"  mean over {len(ratios)} splits: {np.mean(ratios):.3f}x (sd {np.std(ratios, ddof=1):.3f})")
    if args.fit_rows:
        print(f"\nretrain on {args.fit_rows:,} rows ({len(train):,} distinct), the faster of two rounds:")
        cost = fit_cost(settings, train, args.fit_rows, args.seed)
        for name, seconds in cost.items():
            ratio = seconds / cost["hgb"]
            goal = f"  (goal <= 3x: {'met' if ratio <= 3 else 'NOT met'})" if name in CANDIDATES else ""
            print(f"  {name:<12}{seconds:>7.2f} s  {ratio:>5.2f}x hgb{goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
