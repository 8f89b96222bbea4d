"""`mlops predict`'s work: listings from flags and files, priced in chunks the API accepts."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from mlops_cli.errors import MlopsError
from mlops_cli.ops.predict import listing_from_pairs, listings_from_csv, predict, read_listings
from tests.conftest import QuietHandler, serve_in_thread


def test_flags_become_a_listing_with_numbers_as_numbers() -> None:
    assert listing_from_pairs(["city=San Juan", "bed=3", "zip_code=00901"]) == {
        "city": "San Juan",
        "bed": 3.0,
        "zip_code": "00901",
    }
    with pytest.raises(ValueError, match="FIELD=VALUE with FIELD one of"):
        listing_from_pairs(["colour=red"])
    with pytest.raises(ValueError, match="bed must be a number, got 'three'"):
        listing_from_pairs(["bed=three"])


def test_files_give_listings_and_a_bad_one_is_named(tmp_path: Path) -> None:
    csv = "city,state,zip_code,house_size,bed,other\nAustin,Texas,00601,1800,,x\n"
    assert listings_from_csv(io.BytesIO(csv.encode())) == [
        {"city": "Austin", "state": "Texas", "zip_code": "00601", "house_size": 1800}
    ], "zip codes stay text, empty cells are left out, other columns ignored"
    one = tmp_path / "one.json"
    one.write_text(json.dumps({"state": "Texas"}))
    assert read_listings(one) == [{"state": "Texas"}]
    for name, body, words in [
        ("bad.json", "{", "not valid JSON"),
        ("list.json", "[1, 2]", "must hold a listing object"),
        ("x.txt", "", "expected a .json or .csv file"),
    ]:
        (tmp_path / name).write_text(body)
        with pytest.raises(MlopsError, match=words):
            read_listings(tmp_path / name)
    with pytest.raises(MlopsError, match="file not found"):
        read_listings(tmp_path / "nothing.csv")


class CountingAPI(QuietHandler):
    """Prices each listing at 1000 × its bed count; the version goes up after the first request."""

    bodies: list = []

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        CountingAPI.bodies.append(body)
        listings = body if isinstance(body, list) else [body]
        version = 3 if len(CountingAPI.bodies) == 1 else 4  # a promotion between two chunks
        self.answer(200, {
            "predictions": [1000.0 * row["bed"] for row in listings],
            "unseen": [[] for _ in listings], "missing": [["city"] for _ in listings],
            "model": {"name": "m", "version": version, "alias": "champion"},
        })  # fmt: skip


def test_many_listings_go_in_chunks_and_each_price_names_its_version() -> None:
    CountingAPI.bodies = []
    server, url = serve_in_thread(CountingAPI)
    try:
        answer = predict(url, [{"bed": n} for n in range(1, 6)], max_batch=2)
    finally:
        server.shutdown()
    assert [len(b) if isinstance(b, list) else 1 for b in CountingAPI.bodies] == [2, 2, 1]
    assert answer["predictions"] == [1000.0, 2000.0, 3000.0, 4000.0, 5000.0]
    assert answer["versions"] == [3, 3, 4, 4, 4] and answer["model"]["version"] == 4
    assert answer["intervals"] == [None] * 5, "an API without ranges: none, per listing"
    assert answer["missing"] == [["city"]] * 5
    with pytest.raises(MlopsError, match="no listings to price"):
        predict(url, [], max_batch=2)
