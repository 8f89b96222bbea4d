"""Signatures bind what is loaded: a registry admin who pairs a copied signature with their own
artifacts, registers an unsigned pickle, or edits a signed version's files gets nothing loaded —
not by the API, `promote`, `rollback`, `models compare`, the loop's comparison or the UI."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


class Payload:
    """What the attacker pickles: unpickling it writes the marker file (their code, running)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


@pytest.fixture
def trained(home: Path):
    """Two batches through the loop (v1 champion, maybe v2), the settings and an MLflow client."""
    from mlops_cli.config import load_settings
    from mlops_cli.pipeline.train import run
    from mlops_cli.registry.client import configure

    settings = load_settings(generator_batches=2, generator_batch_rows=300, generator_price_drift=0.3)
    run(settings, reload_api=False)
    return settings, configure(settings)


def register_payload(settings, client, tmp_path: Path, *, run_id: str | None, copy_from: int | None) -> int:
    """The attacker's version: an sklearn-flavoured model whose file is a pickle that runs code,
    registered with ``run_id``, carrying the tags of version ``copy_from`` (its signature)."""
    import mlflow.sklearn

    marker = tmp_path / "pwned"
    folder = tmp_path / f"evil-{len(list(tmp_path.glob('evil-*')))}"
    mlflow.sklearn.save_model({"innocent": True}, str(folder), serialization_format="cloudpickle")
    (folder / "model.pkl").write_bytes(pickle.dumps(Payload(marker)))
    mv = client.create_model_version(settings.model_name, source=folder.as_uri(), run_id=run_id)
    if copy_from is not None:
        for key, value in client.get_model_version(settings.model_name, str(copy_from)).tags.items():
            client.set_model_version_tag(settings.model_name, mv.version, key, value)
    return int(mv.version)


def rename_attack(settings, client, tmp_path: Path) -> int:
    """The attack as seen: rename house_prices away, create it anew, register the payload as its
    version 1 with the old v1's run id and signature, alias it champion."""
    old = client.get_model_version(settings.model_name, "1")
    client.rename_registered_model(settings.model_name, "house_prices_old")
    client.create_registered_model(settings.model_name)
    version = register_payload(settings, client, tmp_path, run_id=old.run_id, copy_from=None)
    for key, value in old.tags.items():
        client.set_model_version_tag(settings.model_name, str(version), key, value)
    client.set_registered_model_alias(settings.model_name, "champion", str(version))
    assert version == 1
    return version


def test_a_copied_signature_over_other_artifacts_is_refused_by_the_api(trained, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from serving.app import create_app
    from tests.conftest import TOKEN

    settings, client = trained
    rename_attack(settings, client, tmp_path)
    from pydantic import SecretStr

    token = SecretStr(TOKEN["Authorization"].split()[1])
    api_settings = settings.model_copy(update={"api_token": token, "api_watch_interval": 0})
    app = create_app(api_settings, load_on_start=False)
    with TestClient(app) as api:
        answer = api.post("/load_model", json={"version": 1}, headers=TOKEN)
    assert answer.status_code == 409, answer.text
    assert "does not verify over its artifacts" in answer.json()["detail"] and "model.pkl" in answer.json()["detail"]
    assert not (tmp_path / "pwned").exists(), "the attacker's code ran inside the inference API"


def test_the_cli_commands_never_unpickle_a_version_that_does_not_verify(trained, tmp_path: Path) -> None:
    """promote --force, models compare, the UI's explore page: one line each, nothing unpickled."""
    from mlops_cli.errors import ModelRefused
    from mlops_cli.pipeline.promote import promote_if_better
    from mlops_cli.pipeline.scores import metrics_today
    from ui.data import predict_with_version

    settings, client = trained
    unsigned = register_payload(settings, client, tmp_path, run_id=None, copy_from=None)
    copied = register_payload(settings, client, tmp_path, run_id=None, copy_from=1)
    for version in (unsigned, copied):
        with pytest.raises(ModelRefused, match=f"version {version} "):
            promote_if_better(settings, version, force=True)
        with pytest.raises(ModelRefused):
            metrics_today(settings, [1, version])
        with pytest.raises(ModelRefused):
            predict_with_version(settings, version, [{"city": "Austin", "state": "Texas", "zip_code": "78701"}])
    assert not (tmp_path / "pwned").exists(), "the attacker's code ran in a CLI process"
    assert client.get_model_version_by_alias(settings.model_name, "champion").version != str(unsigned)


def test_the_loop_and_rollback_replace_an_untrusted_champion_without_loading_it(trained, tmp_path: Path) -> None:
    """The payload aliased champion behind the loop's back: the next retrain is compared with
    nothing it would have to unpickle — the verified candidate replaces it, saying why — and a
    rollback from an untrusted champion loads only the version it goes back to."""
    from mlops_cli.config import load_settings
    from mlops_cli.pipeline.promote import rollback
    from mlops_cli.pipeline.train import run
    from mlops_cli.store.db import engine_for
    from mlops_cli.store.rounds import batch_log_rows

    settings, client = trained
    evil = register_payload(settings, client, tmp_path, run_id=None, copy_from=1)
    client.set_registered_model_alias(settings.model_name, "champion", str(evil))
    more = load_settings(generator_batches=3, generator_batch_rows=300, generator_price_drift=0.3)
    run(more, reload_api=False, restart=True)  # a fresh dataset: its first batch retrains
    rounds = batch_log_rows(engine_for(more))
    replaced = [r for r in rounds if r["promotion"] and "cannot be trusted" in r["promotion"]["why"]]
    assert replaced and replaced[0]["promoted"], [r["promotion"] for r in rounds]
    champion = int(client.get_model_version_by_alias(settings.model_name, "champion").version)
    assert champion != evil

    client.set_registered_model_alias(settings.model_name, "champion", str(evil))
    result = rollback(more)
    assert result.champion_rmse is None and result.version != evil
    assert not (tmp_path / "pwned").exists(), "the attacker's code ran in the loop"


def test_an_edited_artifact_of_a_signed_version_is_refused_naming_the_file(trained) -> None:
    from mlflow.artifacts import download_artifacts

    from mlops_cli.registry.signing import unsigned_reason

    settings, client = trained
    mv = client.get_model_version(settings.model_name, "1")
    assert unsigned_reason(settings, mv) is None
    local = Path(download_artifacts(artifact_uri=f"models:/{settings.model_name}/1/MLmodel")).parent
    stored = next(p for p in Path(settings.home).rglob("MLmodel") if p.read_bytes() == (local / "MLmodel").read_bytes())
    (stored.parent / "requirements.txt").write_text("evil==1\n")
    assert "requirements.txt" in (unsigned_reason(settings, mv) or "")


def test_files_on_this_disk_are_verified_in_place_as_strictly_as_a_download(trained) -> None:
    """The gate of promote/rollback hashes a local store's files where they are (no MLflow, no
    copy): the same verdict as the download, and the one file a download adds (MLflow's
    ``registered_model_meta``) cannot be vouched for by editing the manifest tag."""
    import json
    from types import SimpleNamespace

    from mlops_cli.registry.signing import DOWNLOAD_META, MANIFEST_TAG, local_artifacts, unsigned_reason, verified_model

    settings, client = trained
    mv = client.get_model_version(settings.model_name, "1")
    folder = local_artifacts(settings, mv)
    assert folder is not None and (folder / "MLmodel").is_file() and not (folder / DOWNLOAD_META).exists()
    with verified_model(settings, mv) as downloaded:  # the loaders' way: a private verified copy
        assert (downloaded / DOWNLOAD_META).is_file()
    assert unsigned_reason(settings, mv) is None
    manifest = json.loads(mv.tags[MANIFEST_TAG])
    forged = {**mv.tags, MANIFEST_TAG: json.dumps({**manifest, DOWNLOAD_META: "0" * 64})}
    reason = unsigned_reason(settings, SimpleNamespace(version=mv.version, run_id=mv.run_id, tags=forged))
    assert reason and "does not verify" in reason
    assert local_artifacts(settings, SimpleNamespace(version="9999")) is None, "no such version: nothing local"


def test_a_signature_of_the_first_scheme_is_refused(trained) -> None:
    """(name, version, run id) only, as versions were signed before: it bound no content."""
    from mlops_cli.registry.signing import SIGNATURE_TAG, unsigned_reason

    settings, client = trained
    client.set_model_version_tag(settings.model_name, "1", SIGNATURE_TAG, "ab" * 32)
    reason = unsigned_reason(settings, client.get_model_version(settings.model_name, "1"))
    assert reason and "old signature that does not cover its files" in reason
