"""Version references: one parser for numbers and aliases."""

from __future__ import annotations

import pytest

from mlops_cli.registry.refs import version_number


@pytest.mark.parametrize(
    ("ref", "number"),
    [("3", 3), (3, 3), ("v3", 3), ("V12", 12), (" v7 ", 7), ("champion", None), ("vv3", None), ("validated", None)],
)
def test_a_version_reference_is_a_number_or_an_alias(ref: str | int, number: int | None) -> None:
    """One parser for "3", "v3" and "champion" (the CLI, the API, the UI and scoring use it)."""
    assert version_number(ref) == number
