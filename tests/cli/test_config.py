"""`mlops config`: the settings in force and where each comes from, secrets masked."""

import json
from pathlib import Path

from tests.conftest import run_mlops


def test_config_show_json_masks_secrets(home: Path) -> None:
    result = run_mlops("config", "show", "--json", env={"MLOPS_DATA_DB_URL": "postgresql://app:hunter2@db/d"})
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["data_db_url"] == "postgresql+psycopg://app:***@db/d"
    assert shown["home"] == str(home.resolve())
    assert "hunter2" not in result.stdout
