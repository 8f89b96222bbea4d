"""Fixtures the pipeline's tests share."""

from pathlib import Path

import pytest

from mlops_cli.config import load_settings
from mlops_cli.pipeline.engine import advance, fetch
from mlops_cli.pipeline.sources import GeneratorSource
from mlops_cli.store.db import engine_for
from tests.conftest import pipeline_with, train_extra_version


@pytest.fixture
def trained(home: Path):
    """Three versions: v1 on batch 0, v2 on batches 0-1, v3 on batches 0-3."""
    settings = load_settings(generator_batches=4, generator_batch_rows=400, generator_price_drift=0.3)
    pipe = pipeline_with(settings, GeneratorSource(settings))
    for number in range(4):
        round_id = fetch(pipe, number).round_id
        advance(pipe, round_id, "cleaned")
    versions = {b: train_extra_version(settings, "linear", list(range(b + 1))) for b in (0, 1, 3)}
    return settings, engine_for(settings), versions
