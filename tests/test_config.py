from pathlib import Path

import pytest

from mlops_cli.config import load_settings
from mlops_cli.errors import ConfigError


def test_embedded_default_lives_under_home(home: Path) -> None:
    settings = load_settings()
    assert settings.home == home.resolve()
    assert settings.data_db_url == f"sqlite:///{home.resolve() / 'data.db'}"
    assert settings.mlflow_tracking_uri == f"sqlite:///{home.resolve() / 'mlflow.db'}"
    assert settings.mlflow_artifact_root == (home.resolve() / "artifacts").as_uri()
    assert settings.is_embedded
    assert not home.exists(), "creating settings must not touch the disk"


def test_flag_beats_env_beats_file_beats_default(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Path("mlops.toml").write_text('data_group = 7\ndata_day = "Friday"\nretrain_min_new_share = 0.5\n')
    monkeypatch.setenv("MLOPS_DATA_DAY", "Monday")
    monkeypatch.setenv("MLOPS_RETRAIN_MIN_NEW_SHARE", "0.7")
    settings = load_settings(retrain_min_new_share=0.9)
    assert settings.data_group == 7  # file beats default
    assert settings.data_day == "Monday"  # env beats file
    assert settings.retrain_min_new_share == 0.9  # flag beats env
    assert settings.split_seed == 42  # default


def test_drivers_are_pinned_for_server_databases(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_DATA_DB_URL", "postgresql://u@db/data")
    monkeypatch.setenv("MLOPS_MLFLOW_TRACKING_URI", "mysql://u@db/mlflow")
    settings = load_settings()
    assert settings.data_db_url == "postgresql+psycopg://u@db/data"
    assert settings.mlflow_tracking_uri == "mysql+pymysql://u@db/mlflow"
    assert not settings.is_embedded


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("MLOPS_RETRAIN_MIN_NEW_SHARE", "1.5", "retrain_min_new_share"),
        ("MLOPS_DATA_SOURCE", "ftp://nowhere", "data_source"),
        ("MLOPS_DATA_RETRIES", "many", "data_retries"),
    ],
)
def test_bad_values_name_the_setting(
    home: Path, monkeypatch: pytest.MonkeyPatch, key: str, value: str, words: str
) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=words):
        load_settings()


def test_unknown_key_in_file_is_refused(home: Path) -> None:
    Path("mlops.toml").write_text("retrain_threshhold = 0.5\n")
    with pytest.raises(ConfigError, match="retrain_threshhold"):
        load_settings()


@pytest.mark.parametrize("token", ["changeme", "admin", "", "   "])
def test_placeholder_and_empty_tokens_are_refused_on_every_backend(
    home: Path, monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    """`mlops up` serves the embedded default too: "changeme" would open /load_model to anyone
    on the host, and an empty token would lock everyone out while `config show` said "generated"."""
    monkeypatch.setenv("MLOPS_API_TOKEN", token)
    with pytest.raises(ConfigError, match="MLOPS_API_TOKEN is (a placeholder|empty).*unset it"):
        load_settings()
    monkeypatch.setenv("MLOPS_DATA_DB_URL", "postgresql://u@db/data")
    with pytest.raises(ConfigError, match="MLOPS_API_TOKEN"):
        load_settings()


def test_home_is_private_and_the_token_never_readable_by_others(home: Path) -> None:
    import os

    old = os.umask(0o022)  # the usual shell umask: files would be 0644
    try:
        load_settings().api_token_value()
    finally:
        os.umask(old)
    assert home.stat().st_mode & 0o777 == 0o700
    assert (home / "api_token").stat().st_mode & 0o777 == 0o600
    assert not [p for p in home.iterdir() if p.name.startswith(".api_token")]  # no temporary left


def test_generated_token_is_stable_and_private(home: Path) -> None:
    token = load_settings().api_token_value()
    assert len(token) >= 32
    assert load_settings().api_token_value() == token
    assert (home / "api_token").stat().st_mode & 0o077 == 0


def test_public_dict_masks_passwords(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_DATA_DB_URL", "postgresql://app:s3cret@db/data")
    shown = load_settings().public_dict()
    assert "s3cret" not in str(shown)
    assert shown["data_db_url"] == "postgresql+psycopg://app:***@db/data"
