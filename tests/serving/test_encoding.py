"""The unseen-category rule, once for every serving path."""

from __future__ import annotations

import pytest

from serving.encoding import category_key


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("city", "Austin", ("Austin", False)),  # as sent
        ("city", "  austin ", ("Austin", False)),  # the trained form, as ingestion normalises it
        ("zip_code", 601, ("00601", False)),
        ("zip_code", "601.0", ("00601", False)),
        ("city", "Atlantis", (None, True)),  # never seen: priced as unknown, reported
        ("city", "   ", (None, False)),  # blank once normalised: imputed as missing, not unseen
    ],
)
def test_a_value_is_known_in_its_trained_form_blank_or_unseen(name: str, value: object, expected: tuple) -> None:
    known = {"city": {"Austin": 1.0, "Dallas": 2.0}, "zip_code": frozenset({"00601", "75003"})}[name]
    assert category_key(name, value, known) == expected
