"""The load test's listings: valid, varied, the same for the same seed. (Locust patches the
standard library with gevent when imported: it is imported in a child process, as `mlops
loadtest` runs it.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from mlops_cli.schema import FEATURES, listing_problem

READ = "import json, serving.locustfile as f; print(json.dumps({'rows': f.LISTINGS, 'batch': f.BATCH_SIZE}))"


def _locustfile(seed: str) -> dict:
    env = {**os.environ, "MLOPS_LOADTEST_SEED": seed}
    done = subprocess.run([sys.executable, "-c", READ], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_listings_are_valid_varied_and_seeded() -> None:
    first = _locustfile("7")
    listings = first["rows"]
    assert len(listings) > 500 and all(listing_problem(row) is None for row in listings)
    assert all(set(row) <= set(FEATURES) for row in listings)
    assert len({row["state"] for row in listings}) > 5, "not one place over and over"
    assert 1 <= first["batch"] <= 50
    assert _locustfile("8")["rows"] != listings and _locustfile("7")["rows"] == listings
