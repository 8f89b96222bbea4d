"""How long the everyday commands take, as ratios to `python -c "import mlflow"` measured in the
same run, interleaved (the machines are noisy: absolute times mean little).

    python bench/cli.py [--rounds 5]

A small registry is trained first under a temporary MLOPS_HOME (embedded default), and every
version's score on today's test set remembered (`models list --score`). Goals (the first-hour
issue): `models list`, `models show` and `promote 9999` <= 1.2x `import mlflow`; `promote`,
`rollback` and `models compare` on remembered scores <= 1.2x `models list` (they import no MLflow,
load no model and read no test row: the registry is written as MLflow's store writes it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlops_cli.ops.services import mlops_command

GOALS = {  # (baseline, ratio)
    "models list": ("import mlflow", 1.2),
    "models show champion": ("import mlflow", 1.2),
    "promote 9999": ("import mlflow", 1.2),
    "promote A (then B)": ("models list", 1.2),
    "rollback --yes": ("models list", 1.2),
    "models compare A B": ("models list", 1.2),
}


def timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, env=env, capture_output=True, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as work:
        env = {
            **os.environ,
            "MLOPS_HOME": str(Path(work) / ".mlops"),
            "MLOPS_GENERATOR_BATCHES": "6",
            "MLOPS_GENERATOR_BATCH_ROWS": "2000",
            "MLOPS_RETRAIN_MIN_NEW_SHARE": "0.3",
        }
        mlops = mlops_command()
        subprocess.run([*mlops, "train", "--all", "--no-reload-api"], env=env, capture_output=True, check=True)
        listed = subprocess.run([*mlops, "models", "list", "--json"], env=env, capture_output=True, check=True)
        versions = [v["version"] for v in json.loads(listed.stdout)]
        if len(versions) < 2:
            sys.exit("the training run registered fewer than two versions: nothing to promote between")
        a, b = versions[0], versions[-1]
        subprocess.run([*mlops, "models", "list", "--score"], env=env, capture_output=True, check=True)
        commands = {
            "models list": [*mlops, "models", "list"],
            "models show champion": [*mlops, "models", "show", "champion"],
            "promote 9999": [*mlops, "promote", "9999"],
            "promote A (then B)": [*mlops, "promote", str(a), "--force", "--no-reload-api"],
            "rollback --yes": [*mlops, "rollback", "--yes", "--no-reload-api"],
            "models compare A B": [*mlops, "models", "compare", str(a), str(b)],
        }
        baseline_cmd = [sys.executable, "-c", "import mlflow"]
        times: dict[str, list[float]] = {name: [] for name in ["import mlflow", *commands]}
        for _ in range(rounds):  # interleaved: the machine's noise hits every command alike
            times["import mlflow"].append(timed(baseline_cmd, env))
            for name, args in commands.items():
                times[name].append(timed(args, env))
            subprocess.run([*mlops, "promote", str(b), "--force", "--no-reload-api"], env=env, capture_output=True)
    medians = {name: statistics.median(values) for name, values in times.items()}
    base = medians["import mlflow"]
    print(f"{'command':<24}{'median s':>10}{'vs mlflow':>11}{'vs list':>9}   goal")
    print(f"{'import mlflow':<24}{base:>10.2f}{1.0:>10.2f}x")
    for name in commands:
        against, goal = GOALS[name]
        ratio = medians[name] / medians[against]
        verdict = "met" if ratio <= goal else "NOT met"
        versus_list = medians[name] / medians["models list"]
        print(
            f"{name:<24}{medians[name]:>10.2f}{medians[name] / base:>10.2f}x{versus_list:>8.2f}x"
            f"   <= {goal:.1f}x {against}: {verdict}"
        )


if __name__ == "__main__":
    main()
