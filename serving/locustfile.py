"""Locust load for the inference API: realistic listings from the built-in generator, sent to
/predict one at a time and in small batches. Run by `mlops loadtest` (or `locust -f`)."""

import os
import random

from locust import FastHttpUser, between, task

from mlops_cli.pipeline.generator import GeneratorConfig, generate_batch
from mlops_cli.schema import FEATURES, normalise


def _listings() -> list[dict]:
    seed = int(os.environ.get("MLOPS_LOADTEST_SEED", "7"))
    frame = normalise(generate_batch(0, GeneratorConfig(seed=seed, batch_rows=2000)))
    frame = frame.dropna(subset=["city", "state", "zip_code", "house_size"])
    frame = frame[frame["house_size"].between(100, 50_000) & frame["bed"].fillna(1).between(0, 30)]
    frame = frame[frame["bath"].fillna(1).between(0, 30)]
    return [{k: v for k, v in row.items() if v == v} for row in frame[FEATURES].to_dict(orient="records")]


LISTINGS = _listings()
BATCH_SIZE = int(os.environ.get("MLOPS_LOADTEST_BATCH", "8"))


class PredictUser(FastHttpUser):
    wait_time = between(0.0, 0.05)

    @task(4)
    def predict_one(self) -> None:
        self.client.post("/predict", json=random.choice(LISTINGS), name="/predict (1 listing)")

    @task(1)
    def predict_batch(self) -> None:
        self.client.post("/predict", json=random.sample(LISTINGS, BATCH_SIZE), name=f"/predict ({BATCH_SIZE} listings)")
