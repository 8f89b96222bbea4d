"""Version references: a number ("3", "v3", 3) or an alias ("champion")."""

from __future__ import annotations


def version_number(ref: str | int) -> int | None:
    """The version a reference names by number ("3", "v3", 3), or None for an alias ("champion").
    The one parser of version references: the CLI, the API and the UI all go through it."""
    text = str(ref).strip()
    text = text[1:] if text[:1] in ("v", "V") else text
    return int(text) if text.isdigit() else None
