"""Versions this project trained carry a signature the registry cannot forge.

Anyone who can write to the MLflow registry can register a version and point the champion
alias at it; a pickled custom pyfunc would then run its code in the inference API. So the
training step tags each version it registers with an HMAC of (model name, version, run id)
under a key the registry never sees (``MLOPS_SIGNING_KEY``, else one generated into
``MLOPS_HOME/signing_key``), and the API loads only versions whose tag verifies, in MLflow's
sklearn flavour. The signature proves who registered the version, not what its artifacts hold
now: whoever can rewrite the artifact store is out of its reach (see the README's Security).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from mlops_cli.config import Settings

SIGNATURE_TAG = "mlops.signature"


def signing_key(settings: Settings) -> bytes:
    """The signing key: ``MLOPS_SIGNING_KEY``, else MLOPS_HOME/signing_key (created 0600)."""
    from mlops_cli.config import _create_private

    if settings.signing_key is not None:
        return settings.signing_key.get_secret_value().encode()
    path = settings.ensure_home() / "signing_key"
    if not path.exists():
        _create_private(path, secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip().encode()


def signature(key: bytes, name: str, version: int | str, run_id: str | None) -> str:
    message = f"{name}\n{int(version)}\n{run_id or ''}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign_version(client: MlflowClient, settings: Settings, version: int, run_id: str | None) -> None:
    """Tag ``version`` as trained by this project (idempotent)."""
    value = signature(signing_key(settings), settings.model_name, version, run_id)
    client.set_model_version_tag(settings.model_name, str(version), SIGNATURE_TAG, value)


def unsigned_reason(settings: Settings, mv: Any) -> str | None:
    """Why the model version ``mv`` must not be loaded, or None when its signature verifies."""
    given = (mv.tags or {}).get(SIGNATURE_TAG)
    if not given:
        return f"version {mv.version} was not registered by mlops training (no {SIGNATURE_TAG} tag)"
    expected = signature(signing_key(settings), settings.model_name, mv.version, mv.run_id)
    if not hmac.compare_digest(given, expected):
        return f"version {mv.version} carries a signature that does not verify (another key, or forged)"
    return None
