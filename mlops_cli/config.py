"""The one settings object: flag > ``MLOPS_*`` env var > ``mlops.toml`` > embedded default.

Nothing here touches the disk or the network at import time; defaults that live
under ``MLOPS_HOME`` are filled in when a ``Settings`` is created, and folders are
only made by :meth:`Settings.ensure_home`.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from mlops_cli.errors import ConfigError

if TYPE_CHECKING:
    from mlops_cli.rule import Rule

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "change_me", "secret", "password", "token", "admin"}


def config_file() -> Path:
    """The TOML file settings are read from: ``MLOPS_CONFIG`` or ``./mlops.toml``."""
    return Path(os.environ.get("MLOPS_CONFIG", "mlops.toml"))


def normalise_db_url(url: str) -> str:
    """Pin the drivers we ship: psycopg 3 for PostgreSQL, PyMySQL for MySQL/MariaDB."""
    for plain, with_driver in (
        ("postgresql://", "postgresql+psycopg://"),
        ("postgres://", "postgresql+psycopg://"),
        ("mysql://", "mysql+pymysql://"),
        ("mariadb://", "mysql+pymysql://"),
    ):
        if url.startswith(plain):
            return with_driver + url[len(plain) :]
    return url


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MLOPS_", extra="forbid", validate_default=True)

    home: Path = Field(Path(".mlops"), description="state folder: DBs, artifacts, logs, pids")

    # data source
    data_source: str = Field("generator", description="generator, csv:PATH (CSV/Parquet) or a data API URL")
    data_group: int = Field(1, ge=1, description="group_number sent to the data API")
    data_day: str | None = Field(None, description="day sent to the data API (empty: not sent)")
    data_timeout: float = Field(
        300.0, gt=0, description="seconds one data API request may take, connect and whole body"
    )
    data_max_bytes: int = Field(256 * 2**20, ge=1024, description="largest data API answer accepted, in bytes")
    data_retries: int = Field(4, ge=0, le=20, description="retries of a failing data API request")
    data_backoff: float = Field(0.5, ge=0, description="first retry delay, doubled each retry")
    data_poll_interval: float = Field(
        60.0, gt=0, description="seconds between calls while the data API repeats a batch number"
    )
    data_max_wait: float = Field(
        900.0, ge=0, description="longest wait for the data API's next batch number before stopping"
    )
    data_max_skip: int = Field(
        1000, ge=0, description="most batch numbers the data API may jump over at once (more: an error)"
    )
    data_groups: int = Field(10, ge=1, le=10_000, description="`mlops data serve` accepts groups 1..N")
    data_api_release_window: float = Field(
        0.0, ge=0, description="`mlops data serve`: seconds a batch stays current (the course server: 300)"
    )
    data_api_sample_share: float = Field(
        1.0, gt=0, le=1, description="`mlops data serve`: share of the batch in each answer (course server: 0.1)"
    )
    data_api_host: str = Field("127.0.0.1", description="bind address of `mlops data serve`")
    data_api_port: int = Field(8080, ge=1, le=65535, description="port of `mlops data serve`")

    # built-in generator
    generator_seed: int = 42
    generator_batches: int = Field(10, ge=1, le=10_000)
    generator_batch_rows: int = Field(1500, ge=10, le=5_000_000)
    generator_price_drift: float = Field(0.06, ge=-0.5, le=1.0, description="price level change per batch")
    generator_state_drift: float = Field(
        0.6, ge=0.0, le=1.0, description="how far the state mix moves by the last batch"
    )

    # local stack (`mlops up`): where each supervised service listens
    mlflow_host: str = Field("127.0.0.1", description="bind address of the local MLflow server")
    mlflow_port: int = Field(5000, ge=1, le=65535, description="port of the local MLflow server")
    ui_port: int = Field(8501, ge=1, le=65535, description="port of the Streamlit UI")
    prometheus_port: int = Field(9090, ge=1, le=65535, description="port of the local Prometheus")
    stack_start_timeout: float = Field(120.0, gt=0, description="seconds each service may take to become healthy")
    stack_stop_timeout: float = Field(10.0, gt=0, description="seconds before a service that ignores SIGTERM is killed")
    stack_max_restarts: int = Field(
        5, ge=0, le=1000, description="times `mlops up`'s watchdog restarts a service that died (0: never)"
    )

    # Airflow (`mlops up --with airflow`, `mlops train --runner airflow`)
    airflow_url: str | None = Field(None, description="Airflow's API server (default: http://API_HOST:AIRFLOW_PORT)")
    airflow_port: int = Field(8082, ge=1, le=65535, description="port of the local Airflow API server")
    airflow_user: str | None = Field(None, description="Airflow user for the REST API (none: all-admins mode)")
    airflow_password: SecretStr | None = Field(None, description="password of MLOPS_AIRFLOW_USER")
    airflow_dags_folder: Path | None = Field(None, description="the DAG folder (default: this project's dags/)")
    airflow_poll_interval: float = Field(2.0, gt=0, description="seconds between polls of Airflow's API")

    # storage and tracking
    data_db_url: str | None = Field(None, description="SQLAlchemy URL of the data DB")
    mlflow_tracking_uri: str | None = Field(None, description="MLflow tracking server or backend URI")
    mlflow_artifact_root: str | None = Field(None, description="artifact location for new experiments")
    mlflow_experiment: str = "house_prices"
    model_name: str = "house_prices"
    champion_alias: str = "champion"
    challenger_alias: str = "challenger"

    # pipeline
    retrain_min_new_share: float = Field(0.6, gt=0, le=1, description="retrain when new rows / all rows reaches this")
    drift_threshold: float = Field(0.2, gt=0, description="drift score that triggers a retrain")
    drift_trigger: bool = Field(True, description="allow drift as a second retrain trigger")
    retrain_max_degradation: float = Field(
        0.2,
        gt=0,
        description="retrain when the champion's MAE on a new batch is this much above its test MAE (0.2: 20%)",
    )
    retrain_new_category_share: float = Field(
        0.2,
        gt=0,
        description="retrain when this share of a batch's rows has a category the champion never saw "
        "(above 1: never; 1 still fires when every row has one)",
    )
    min_train_rows: int = Field(
        20, ge=20, description="fewest clean training rows a model is fitted on (fewer: no training, said so)"
    )
    promote_rule: str = Field(
        "rmse <= 0%",
        description="when a challenger replaces the champion, e.g. 'mae <= -3% and rmse <= +1%' (change vs champion)",
    )
    test_size: float = Field(0.15, gt=0, lt=1)
    split_seed: int = 42
    max_categories: int = Field(60, ge=2, le=10_000, description="one-hot categories per column, rest pooled")
    model: Literal["linear", "ridge", "loglinear", "hgb", "lgbm_geo", "lgbm_local", "auto"] = Field(
        "auto",
        description="model fitted at each retrain; auto fits every candidate and keeps the best on a validation split",
    )
    select_metric: Literal["mae", "rmse"] = Field(
        "mae",
        description="what auto chooses a candidate by on the validation rows (rmse favours a few mansions)",
    )

    # inference API
    api_url: str | None = Field(None, description="the inference API (default: http://API_HOST:API_PORT)")
    api_token: SecretStr | None = Field(None, description="bearer token for POST /load_model")
    api_host: str = Field("127.0.0.1", description="bind address of `mlops serve`")
    api_port: int = Field(8000, ge=1, le=65535, description="port of `mlops serve`")
    api_workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes")
    api_max_batch: int = Field(1000, ge=1, le=100_000, description="most listings one /predict call may send")
    signing_key: SecretStr | None = Field(
        None, description="HMAC key signing the versions training registers (default: MLOPS_HOME/signing_key)"
    )
    api_allow_unsigned: bool = Field(
        False, description="let the inference API load versions mlops did not sign, in any flavour (unsafe)"
    )
    api_ready_without_champion: bool = Field(
        False,
        description="answer /health/ready with 200 while the registry has no champion yet "
        "(Kubernetes: a first install does not wait for training)",
    )
    api_access_log: bool = Field(False, description="log one line per request of the inference API")
    api_max_body_bytes: int = Field(
        1_048_576, ge=1024, le=1 << 30, description="largest /predict body; a bigger one is refused with 413 unread"
    )
    api_body_timeout: float = Field(
        10.0, gt=0, le=3600, description="seconds a /predict body may take to arrive; slower: 408, connection closed"
    )
    api_keep_alive: float = Field(5.0, gt=0, le=3600, description="seconds an idle keep-alive connection is kept")
    api_max_connections: int = Field(
        1000, ge=1, le=1_000_000, description="connections and requests in flight per worker; past it: 503"
    )
    api_watch_interval: float = Field(30.0, ge=0, description="seconds between alias checks (0: only /load_model)")
    api_retry_interval: float = Field(5.0, gt=0, description="seconds between load attempts while no model is loaded")
    api_events: Literal["off", "errors", "all"] = Field(
        "all", description="inference events written to the data DB: every request, only refused ones, or none"
    )
    api_events_sample: float = Field(
        1.0, gt=0, le=1, description="share of answered requests recorded (refused ones always are)"
    )
    api_events_queue: int = Field(
        20_000, ge=1, le=10_000_000, description="events waiting for the writer; past this, new ones are dropped"
    )
    api_events_queue_bytes: int = Field(
        64 * 2**20, ge=1024, le=1 << 34, description="request bytes the waiting events may hold; past this, dropped"
    )
    api_events_flush_interval: float = Field(
        0.5, gt=0, le=60, description="seconds between the event writer's bulk writes"
    )
    api_events_flush_rows: int = Field(
        2000, ge=1, le=1_000_000, description="queued events that start a write before the interval ends"
    )
    api_shadow: str = Field(
        "challenger",
        description="what the API tries in shadow beside the champion: an alias, or version:N",
        pattern=r"^(version:[1-9]\d{0,9}|[A-Za-z][\w-]{0,63})$",
    )
    api_shadow_share: float = Field(
        0.0, ge=0, le=1, description="share of answered requests also priced by the shadow model (0: no shadow)"
    )
    api_drift_interval: float = Field(
        60.0, ge=0, description="seconds between the API's served-traffic drift checks (0: none)"
    )
    api_drift_window: float = Field(
        15.0, gt=0, le=10_080, description="minutes of answered listings each drift check compares with training"
    )
    api_events_retention_days: float = Field(
        30.0, ge=0, description="the loop deletes inference events older than this (0: keep them all)"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file())
        return (init_settings, env_settings, toml)

    @field_validator("data_source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        value = value.strip()
        if value == "generator" or value.startswith(("csv:", "http://", "https://")):
            if value.startswith("csv:") and not value[4:]:
                raise ValueError("csv: needs a path, e.g. csv:listings.parquet")
            return value
        raise ValueError("expected 'generator', 'csv:PATH' or an http(s):// data API URL")

    @field_validator("promote_rule")
    @classmethod
    def _readable_rule(cls, value: str) -> str:
        from mlops_cli.rule import parse_rule

        return parse_rule(value).text()  # refused here, at start, when it cannot be read

    def rule(self) -> Rule:
        from mlops_cli.rule import parse_rule

        return parse_rule(self.promote_rule)

    @field_validator("data_day")
    @classmethod
    def _day(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("data_db_url", "mlflow_tracking_uri")
    @classmethod
    def _driver(cls, value: str | None) -> str | None:
        return normalise_db_url(value) if value else value

    @model_validator(mode="after")
    def _fill_embedded_defaults(self) -> Settings:
        self.home = self.home.expanduser().resolve()
        if not self.data_db_url:
            self.data_db_url = f"sqlite:///{self.home / 'data.db'}"
        if not self.mlflow_tracking_uri:
            self.mlflow_tracking_uri = f"sqlite:///{self.home / 'mlflow.db'}"
        if not self.api_url:
            self.api_url = f"http://{self.api_host}:{self.api_port}"
        if not self.airflow_url:
            self.airflow_url = f"http://{self.api_host}:{self.airflow_port}"
        if not self.mlflow_artifact_root and self._tracking_is_local():
            self.mlflow_artifact_root = (self.home / "artifacts").as_uri()
        token = self.api_token.get_secret_value() if self.api_token is not None else None
        if token is not None and token.strip().lower() in PLACEHOLDER_SECRETS:
            # everywhere: `mlops up` serves the embedded default on a port anyone on the host can reach
            what = "empty" if not token.strip() else "a placeholder"
            raise ValueError(
                f"MLOPS_API_TOKEN is {what}: unset it to have one generated into MLOPS_HOME/api_token, "
                "or set a long random secret"
            )
        return self

    def _tracking_is_local(self) -> bool:
        uri = self.mlflow_tracking_uri or ""
        return not uri.startswith(("http://", "https://", "databricks"))

    @property
    def is_embedded(self) -> bool:
        """True when data and tracking both live in SQLite files (the laptop default)."""
        return str(self.data_db_url).startswith("sqlite") and str(self.mlflow_tracking_uri).startswith(
            ("sqlite", "file:")
        )

    def ensure_home(self) -> Path:
        """``MLOPS_HOME``, created private (0700): it holds the databases, the token and logs."""
        if not self.home.is_dir():
            self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.home.chmod(0o700)  # mkdir's mode is filtered by the umask
        return self.home

    def api_token_value(self) -> str:
        """The bearer token: from settings, else the one generated into ``MLOPS_HOME``."""
        return self.home_secret("api_token", self.api_token)

    def home_secret(self, name: str, given: SecretStr | None) -> str:
        """A secret as set (environment, config file), else the one generated once into
        ``MLOPS_HOME/name`` (0600, created atomically: concurrent first uses agree on one)."""
        if given is not None:
            return given.get_secret_value()
        path = self.ensure_home() / name
        if not path.exists():
            create_private(path, secrets.token_urlsafe(32) + "\n")
        return path.read_text().strip()

    def public_dict(self) -> dict[str, Any]:
        """Settings for display: secrets masked, where each value came from is not tracked."""
        data = self.model_dump(mode="json")
        data["api_token"] = "set" if self.api_token is not None else "generated into MLOPS_HOME/api_token"
        data["airflow_password"] = "set" if self.airflow_password else None
        data["signing_key"] = "set" if self.signing_key is not None else "generated into MLOPS_HOME/signing_key"
        for key in ("data_db_url", "mlflow_tracking_uri"):
            data[key] = mask_password(data[key])
        return data


def create_private(path: Path, text: str) -> None:
    """Write a new file readable by its owner only, atomically: never briefly world-readable,
    never half-written; when another process created it first, theirs is kept."""
    import os
    import tempfile

    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.link(temporary, path)  # fails if the file exists: the first writer wins
    except FileExistsError:
        pass
    finally:
        os.unlink(temporary)


def mask_password(url: str | None) -> str | None:
    """Hide the password in a URL such as ``postgresql://user:pw@host/db``."""
    if not url or "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    if ":" in creds:
        creds = creds.split(":", 1)[0] + ":***"
    return f"{scheme}://{creds}@{host}"


def load_settings(**overrides: Any) -> Settings:
    """Build settings, with CLI flags as ``overrides`` (``None`` means "not given")."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(
            f"invalid settings: {problems}",
            hint=f"check MLOPS_* variables and {config_file()}",
        ) from None
    except (OSError, ValueError) as exc:  # unreadable or invalid TOML
        raise ConfigError(f"cannot read {config_file()}: {exc}") from None
