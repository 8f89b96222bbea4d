"""The home's embedded MLflow database (``sqlite:///MLOPS_HOME/mlflow.db``), created whole or not at
all: a kill while MLflow created and migrated it in place left a half-migrated file that every later
run failed on ("duplicate column name", "table logged_models already exists").

:func:`ensure_embedded_db` runs before anything opens it (the loop, the CLI, the API, `mlops up`'s
MLflow server), under a file lock: a missing file is created and migrated as a temporary file beside
it, then renamed into place (a rename is atomic); a file found half-migrated and holding nothing (no
run, no registered model) is moved aside and rebuilt; one holding runs is named, with how to repair
it, and never touched.
"""

from __future__ import annotations

import os
import sqlite3
import time
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_cli.errors import MlopsError
from mlops_cli.faults import checkpoint

if TYPE_CHECKING:
    from mlops_cli.config import Settings

PARTIAL = ".creating-"  # mlflow.db.creating-<pid>: a creation in progress (or killed)


def embedded_path(settings: Settings) -> Path | None:
    """The SQLite file of the tracking URI when it is a local file, else None."""
    uri = str(settings.mlflow_tracking_uri)
    if not uri.startswith("sqlite:///") or "memory" in uri:
        return None
    return Path(uri.removeprefix("sqlite:///").split("?", 1)[0])


@cache
def head_revision() -> str:
    """The schema revision the installed MLflow migrates to, read from its migration scripts
    without importing MLflow (2 s): the revision no other script names as its parent."""
    import importlib.util
    import re

    spec = importlib.util.find_spec("mlflow")
    revisions: set[str] = set()
    parents: set[str] = set()
    if spec is not None and spec.submodule_search_locations:
        folder = Path(next(iter(spec.submodule_search_locations))) / "store" / "db_migrations" / "versions"
        for script in folder.glob("*.py"):
            text = script.read_text(encoding="utf-8", errors="replace")
            found = re.search(r"^revision\s*=\s*['\"](\w+)['\"]", text, re.M)
            if found:
                revisions.add(found.group(1))
                parent = re.search(r"^down_revision\s*=\s*(.+)$", text, re.M)
                if parent:
                    parents.update(re.findall(r"['\"](\w+)['\"]", parent.group(1)))
    heads = revisions - parents
    if len(heads) == 1:
        return heads.pop()
    from mlflow.store.db.utils import _get_latest_schema_revision  # its own answer, slower

    return _get_latest_schema_revision()


def state_of(path: Path) -> tuple[str | None, bool, int]:
    """(its schema revision, whether a migration was cut short, runs + registered models in it)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        revision = None
        if "alembic_version" in tables:
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = row[0] if row else None
        held = 0
        for table in ("runs", "registered_models"):
            if table in tables:
                held += db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 (fixed names)
    cut_short = any(name.startswith("_alembic_tmp_") for name in tables)
    return revision, cut_short, held


def _create(path: Path) -> None:
    """A complete, migrated database at ``path``, built beside it and renamed into place."""
    import sqlalchemy
    from mlflow.store.db.utils import _initialize_tables

    partial = path.with_name(f"{path.name}{PARTIAL}{os.getpid()}")
    partial.unlink(missing_ok=True)
    engine = sqlalchemy.create_engine(f"sqlite:///{partial}")
    try:
        _initialize_tables(engine)  # MLflow's own: initial tables, then every migration
    finally:
        engine.dispose()
    checkpoint("mlflow_db_migrated")
    os.replace(partial, path)


def ensure_embedded_db(settings: Settings) -> None:
    """Make the embedded MLflow database whole before anything opens it (see the module's text).
    Callers set MLflow's offline environment first (``registry.client.offline_mlflow_env``)."""
    path = embedded_path(settings)
    if path is None:
        return
    if path.exists() and _is_whole(path):  # the everyday case: one read, no lock
        return
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path.with_name(path.name + ".lock"))):
        for stale in path.parent.glob(f"{path.name}{PARTIAL}*"):  # a creation killed before its rename
            stale.unlink(missing_ok=True)
        from mlops_cli.registry.engines import forget

        forget(str(path))  # whatever is created or replaced below, no pooled connection reads the old file
        if not path.exists():
            _create(path)
            return
        if _is_whole(path):
            return
        revision, cut_short, held = state_of(path)
        if held:
            raise MlopsError(
                f"the MLflow database {path} is half-migrated (schema {revision or 'none'}, expected "
                f"{head_revision()}{', a migration was cut short' if cut_short else ''}) and holds {held} "
                "runs and models",
                hint=f"back it up, then run: mlflow db upgrade sqlite:///{path}",
            )
        aside = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%dT%H%M%S')}")
        os.replace(path, aside)  # kept for a look; it held no run and no model
        _create(path)


def _is_whole(path: Path) -> bool:
    try:
        revision, cut_short, _ = state_of(path)
    except sqlite3.DatabaseError:  # not a database at all (a torn header): not whole
        return False
    return not cut_short and revision == head_revision()
