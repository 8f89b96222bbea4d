"""MLflow tracking and the model registry: model ``house_prices`` with aliases
``champion`` and ``challenger``, promotions recorded with both RMSEs."""

from __future__ import annotations

import logging
import os
import warnings
from typing import TYPE_CHECKING, Any

from mlops_cli.errors import RegistryUnavailable, VersionNotFound
from mlops_cli.registry.auth import offer_saved_credentials

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from mlops_cli.config import Settings

# What MLflow answers for a missing model, version or alias (anything else is an outage).
NOT_FOUND_CODES = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")


def offline_mlflow_env() -> None:
    """No usage telemetry (there is no network to send it to) and no progress bars."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    # Fail fast on an unreachable tracking server; callers retry on their own schedule.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")


def _quiet_mlflow() -> None:
    for name in ("mlflow", "alembic", "sqlalchemy.engine", "urllib3", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # it logs (with tracebacks) every database error it then raises: we report the raise once
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", module="mlflow")
    warnings.filterwarnings("ignore", category=UserWarning, module="pydantic")


def connect(settings: Settings) -> MlflowClient:
    """A client for the settings' tracking URI (no calls made yet)."""
    offline_mlflow_env()
    import mlflow
    from mlflow import MlflowClient

    _quiet_mlflow()  # after the import: MLflow sets its own log levels when imported
    uri = str(settings.mlflow_tracking_uri)
    if uri.startswith("sqlite"):
        settings.ensure_home()
        from mlops_cli.registry.embedded import ensure_embedded_db

        ensure_embedded_db(settings)  # whole before MLflow opens it: a kill cannot wedge the home
    offer_saved_credentials(settings, uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(uri, uri)


def root_cause(exc: BaseException) -> str:
    """A failure's cause in a few words, from the deepest exception of its chain ("connection
    refused", "OperationalError: database is locked"), shortened at a word, never inside a URL."""
    chain = [exc]
    while (cause := chain[-1].__cause__ or chain[-1].__context__) is not None and cause not in chain:
        chain.append(cause)
    deepest = chain[-1]
    if isinstance(deepest, OSError) and deepest.strerror:
        return deepest.strerror[:1].lower() + deepest.strerror[1:]
    text = str(deepest).splitlines()[0] if str(deepest) else ""
    if len(text) > 160:
        text = text[:160].rsplit(" ", 1)[0] + " …"
    return f"{type(deepest).__name__}: {text}" if text else type(deepest).__name__


def unreachable(settings: Settings, exc: Exception) -> RegistryUnavailable:
    return RegistryUnavailable(
        f"cannot reach MLflow at {_safe(str(settings.mlflow_tracking_uri))}: {root_cause(exc)}",
        hint="check MLOPS_MLFLOW_TRACKING_URI: is the server or database up?",
    )


def is_outage(exc: BaseException) -> bool:
    """A failure to reach MLflow or its artifact store: a connection error (requests' and httpx's
    derive from OSError) anywhere in the exception's chain of causes."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def configure(settings: Settings) -> MlflowClient:
    """Point MLflow at the settings' tracking URI and make sure our experiment exists."""
    return tracking(settings)[0]


def tracking(settings: Settings) -> tuple[MlflowClient, str]:
    """:func:`configure`'s client and our experiment's id (the experiment created when missing)."""
    import mlflow

    client = connect(settings)
    try:
        experiment = client.get_experiment_by_name(settings.mlflow_experiment)
        if experiment is None:
            experiment_id = client.create_experiment(
                settings.mlflow_experiment, artifact_location=settings.mlflow_artifact_root
            )
        else:
            experiment_id = experiment.experiment_id
    except Exception as exc:  # MLflow wraps DB and HTTP failures in many types
        raise unreachable(settings, exc) from None
    mlflow.set_experiment(settings.mlflow_experiment)
    return client, experiment_id


def _safe(uri: str) -> str:
    from mlops_cli.config import mask_password

    return mask_password(uri) or uri


def alias_version(client: MlflowClient, settings: Settings, alias: str) -> ModelVersion | None:
    """The version an alias points at, or None when the alias (or the model) does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(settings.model_name, alias)
    except MlflowException as exc:
        if exc.error_code in NOT_FOUND_CODES:
            return None
        raise unreachable(settings, exc) from None
    except OSError as exc:  # connection failures that MLflow did not wrap
        raise unreachable(settings, exc) from None


# What the loop last measured of the champion on new rows (a batch's clean rows before it is
# trained on), kept as tags of that version: the inference API exports them for Grafana.
BATCH_CHECK_TAGS = ("batch_checked", "batch_mae", "batch_rmse", "batch_mae_change")


def tag_batch_check(client: MlflowClient, settings: Settings, version: int, batch: int, on_batch: dict) -> None:
    """Tag ``version`` with its error on batch ``batch``'s rows (idempotent: a rerun sets the same)."""
    values = {
        "batch_checked": batch,
        "batch_mae": on_batch.get("mae"),
        "batch_rmse": on_batch.get("rmse"),
        "batch_mae_change": on_batch.get("mae_change"),
    }
    for key, value in values.items():
        if value is not None:
            client.set_model_version_tag(settings.model_name, str(version), key, repr(value))


def resolve_version(client: MlflowClient, settings: Settings, ref: str | int) -> ModelVersion:
    """A version by number or alias; a clear error when it does not exist."""
    from mlflow.exceptions import MlflowException

    from mlops_cli.registry.refs import version_number

    number = version_number(ref)
    if number is not None:
        text = str(number)
        try:
            return client.get_model_version(settings.model_name, text)
        except MlflowException as exc:
            if exc.error_code not in NOT_FOUND_CODES:
                raise unreachable(settings, exc) from None
            raise VersionNotFound(
                f"model {settings.model_name} has no version {text}", hint="`mlops models list` shows them"
            ) from None
    found = alias_version(client, settings, str(ref))
    if found is None:
        raise VersionNotFound(
            f"model {settings.model_name} has no alias '{ref}'", hint="`mlops models list` shows versions and aliases"
        )
    return found


def model_aliases(client: MlflowClient, settings: Settings) -> dict[int, list[str]]:
    """version → aliases (version searches do not return aliases; the registered model does)."""
    from mlflow.exceptions import MlflowException

    try:
        aliases = client.get_registered_model(settings.model_name).aliases or {}
    except MlflowException:
        return {}
    by_version: dict[int, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(int(version), []).append(alias)
    return by_version


def version_info(
    client: MlflowClient | None, settings: Settings, mv: Any, aliases: dict[int, list[str]] | None = None
) -> dict[str, Any]:
    """One registered version (MLflow's ModelVersion or the light registry's Version) as a plain
    dict (registry/info.py's ``ModelInfo``), for tables and --json. Without ``aliases``, ``client``
    looks them up."""
    from mlops_cli.registry.info import ModelInfo

    if aliases is None:
        aliases = model_aliases(client, settings)
    return ModelInfo.of(mv, aliases).to_dict()
