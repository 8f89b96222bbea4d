"""One engine per MLflow database and process, dropped when the embedded file is replaced."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from mlops_cli.registry.engines import forget, shared_engine


def test_one_engine_per_database_until_its_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "mlflow.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (v TEXT)")
        db.execute("INSERT INTO t VALUES ('old')")
    uri = f"sqlite:///{path}"
    engine = shared_engine(uri)
    assert shared_engine(uri) is engine and shared_engine(f"sqlite:///{tmp_path / 'other.db'}") is not engine
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT v FROM t").scalar() == "old"
    replacement = tmp_path / "new.db"
    with sqlite3.connect(replacement) as db:
        db.execute("CREATE TABLE t (v TEXT)")
        db.execute("INSERT INTO t VALUES ('new')")
    replacement.replace(path)
    forget(str(path))
    with shared_engine(uri).connect() as conn:
        assert conn.exec_driver_sql("SELECT v FROM t").scalar() == "new", "no pooled connection to the old file"
