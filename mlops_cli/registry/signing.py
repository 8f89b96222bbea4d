"""Versions this project trained carry a signature over what they hold, which the registry cannot forge.

Anyone who can write to the MLflow registry can register a version, upload artifacts for it and
point the champion alias at it; a pickle would then run its code in whatever process loads it.
So the training step signs each version it registers: an HMAC, under a key the registry never
sees (``MLOPS_SIGNING_KEY``, else one generated into ``MLOPS_HOME/signing_key``), of a manifest
of the version's artifact files (each file's SHA-256) together with the model name, version and
run id. The manifest itself is kept in a tag, so a refusal can say which file changed.

Every loader — the inference API, ``promote``/``rollback``/``models compare``, the loop's
comparison, the UI — goes through :func:`verified_model`: it downloads the artifacts into a
private folder, hashes them, checks the signature and the flavour, and only then hands the
folder over to be deserialised. Nothing is read from the artifact store again after the check,
so a file swapped in between cannot be loaded either.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_cli.errors import ModelRefused

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from mlops_cli.config import Settings
    from mlops_cli.registry.light import LightRegistry

SIGNATURE_TAG = "mlops.signature"
MANIFEST_TAG = "mlops.manifest"
# Signatures of this scheme start with it; the first scheme (name, version and run id only,
# no content) is refused: it let a registry admin pair an old signature with new artifacts.
SCHEME = "v2"


def signing_key(settings: Settings) -> bytes:
    """The signing key: ``MLOPS_SIGNING_KEY``, else MLOPS_HOME/signing_key (created 0600)."""
    return settings.home_secret("signing_key", settings.signing_key).encode()


def manifest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative POSIX path) → its SHA-256."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        files[path.relative_to(folder).as_posix()] = digest.hexdigest()
    return files


def signature(key: bytes, name: str, version: int | str, run_id: str | None, files: dict[str, str]) -> str:
    message = json.dumps(
        {"name": name, "version": int(version), "run_id": run_id or "", "files": files}, sort_keys=True
    ).encode()
    return f"{SCHEME}:{hmac.new(key, message, hashlib.sha256).hexdigest()}"


def _download(settings: Settings, version: int | str, into: Path) -> Path:
    """The artifacts of ``version`` downloaded into ``into``; RegistryUnavailable on an outage."""
    from mlflow.artifacts import download_artifacts

    from mlops_cli.registry.client import connect, is_outage, unreachable

    connect(settings)  # models:/ URIs resolve against the current registry URI
    try:
        return Path(download_artifacts(artifact_uri=f"models:/{settings.model_name}/{version}", dst_path=str(into)))
    except Exception as exc:
        if is_outage(exc):
            raise unreachable(settings, exc) from None
        raise ModelRefused(
            f"refused {settings.model_name} version {version}: its artifacts cannot be downloaded "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''})"
        ) from None


def sign_version(client: MlflowClient, settings: Settings, version: int, run_id: str | None) -> None:
    """Tag ``version`` as trained by this project, over the artifacts the store holds now (idempotent)."""
    with tempfile.TemporaryDirectory(prefix="mlops-sign-") as scratch:
        files = manifest(_download(settings, version, Path(scratch)))
    value = signature(signing_key(settings), settings.model_name, version, run_id, files)
    client.set_model_version_tag(settings.model_name, str(version), MANIFEST_TAG, json.dumps(files, sort_keys=True))
    client.set_model_version_tag(settings.model_name, str(version), SIGNATURE_TAG, value)


# Written by MLflow's client into every download of a registered version (its name and version),
# so it is in the signed manifest, but it is not in the store and never loaded.
DOWNLOAD_META = "registered_model_meta"


def refusal(settings: Settings, mv: Any, folder: Path, *, in_place: bool = False) -> str | None:
    """Why the version ``mv``, whose artifacts are in ``folder``, must not be loaded; None when
    its signature verifies over exactly these files and it is in MLflow's sklearn flavour.

    ``in_place``: ``folder`` is the store's own (no download), which lacks the download's
    :data:`DOWNLOAD_META`; its entry is taken from the signed manifest (the HMAC covers that
    entry, so a changed one fails as any changed file does)."""
    import yaml

    given = (mv.tags or {}).get(SIGNATURE_TAG)
    if not given:
        return f"version {mv.version} was not registered by mlops training (no {SIGNATURE_TAG} tag)"
    if not given.startswith(f"{SCHEME}:"):
        return (
            f"version {mv.version} carries an old signature that does not cover its files "
            "(retrain it: `mlops train --all --restart`)"
        )
    try:
        signed = json.loads((mv.tags or {}).get(MANIFEST_TAG) or "{}")
    except ValueError:
        signed = {}
    signed = signed if isinstance(signed, dict) else {}
    files = manifest(folder)
    if in_place and DOWNLOAD_META not in files and isinstance(signed.get(DOWNLOAD_META), str):
        files[DOWNLOAD_META] = signed[DOWNLOAD_META]
    expected = signature(signing_key(settings), settings.model_name, mv.version, mv.run_id, files)
    if not hmac.compare_digest(given, expected):
        changed = sorted(set(files) ^ set(signed) | {f for f in files if f in signed and files[f] != signed[f]})
        which = f" (files that differ from the signed manifest: {', '.join(changed)[:120]})" if changed else ""
        return f"version {mv.version} carries a signature that does not verify over its artifacts{which}"
    try:
        flavors = yaml.safe_load((folder / "MLmodel").read_text()).get("flavors", {})
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        flavors = {}
    if "sklearn" not in flavors:
        return f"version {mv.version} is not in MLflow's sklearn flavour (flavours: {sorted(flavors) or 'none'})"
    return None


@contextmanager
def verified_model(settings: Settings, mv: Any, check: bool = True) -> Iterator[Path]:
    """A private local copy of version ``mv``'s model, verified (:func:`refusal`) before it is
    handed over: load from this folder, never from the store. ModelRefused otherwise.
    ``check=False`` (``MLOPS_API_ALLOW_UNSIGNED``) only downloads."""
    with tempfile.TemporaryDirectory(prefix="mlops-model-") as scratch:
        folder = _download(settings, mv.version, Path(scratch))
        reason = refusal(settings, mv, folder) if check else None
        if reason is not None:
            raise ModelRefused(f"refused {settings.model_name} {reason}")
        yield folder


def unsigned_reason(settings: Settings, mv: Any, registry: LightRegistry | None = None) -> str | None:
    """Why ``mv`` would be refused by every loader, or None. Artifacts on this machine's disk (the
    embedded registry, `mlops up`'s server) are verified where they are, without MLflow: a gate
    that loads nothing need not copy (every loader still verifies its own private copy); others
    are downloaded and verified. ``registry``: the caller's, asked where the files are."""
    folder = local_artifacts(settings, mv, registry)
    if folder is not None:
        return refusal(settings, mv, folder, in_place=True)
    try:
        with verified_model(settings, mv):
            return None
    except ModelRefused as exc:
        return exc.message


def local_artifacts(settings: Settings, mv: Any, registry: LightRegistry | None = None) -> Path | None:
    """The folder holding ``mv``'s model files when it is on this machine's disk, else None."""
    from urllib.parse import unquote, urlparse
    from urllib.request import url2pathname

    from mlops_cli.registry.light import LightRegistry

    uri = (registry or LightRegistry(settings)).artifact_uri(mv.version) or ""
    parsed = urlparse(uri)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        folder = Path(url2pathname(unquote(parsed.path)))
    elif not parsed.scheme and uri.startswith("/"):
        folder = Path(uri)
    else:
        return None
    return folder if folder.is_dir() else None
