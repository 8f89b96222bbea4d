"""Versions scored on today's test set, each score remembered under the rows it was computed on."""

import pytest

from mlops_cli.pipeline.scores import cached_metrics, current_test_set, scores_today, versions_today
from mlops_cli.registry.light import LightRegistry
from mlops_cli.store.frames import read_table
from mlops_cli.store.tables import clean_data


def test_a_score_is_remembered_under_the_rows_it_was_computed_on(trained, monkeypatch) -> None:
    """Test rows added between reading the set's hashes and reading its rows (a loop beside an
    unlocked `models compare`): the score is kept for the rows scored, never for the older set."""
    from mlops_cli.registry.scoring import metrics_on
    from mlops_cli.store import listings, meta

    settings, engine, versions = trained
    test = current_test_set(engine)
    before = test.fingerprint
    extra = read_table(engine, clean_data).query("split == 'train'").head(5).assign(split="test", round=999)
    with engine.begin() as conn:
        listings.replace_clean_rows(conn, 999, extra)
    run_id = LightRegistry(settings).version(versions[3]).run_id
    scores = cached_metrics(settings, engine, versions[3], run_id, test)
    after = current_test_set(engine).fingerprint
    assert after != before
    with engine.connect() as conn:
        assert meta.remembered_metrics(conn, run_id, before) is None, "not lent to the older set"
        assert meta.remembered_metrics(conn, run_id, after) == scores
    assert scores == metrics_on(settings, versions[3], current_test_set(engine).rows)


def test_remembered_scores_are_read_without_loading_a_model(trained, monkeypatch) -> None:
    settings, engine, versions = trained
    runs = {v: LightRegistry(settings).version(v).run_id for v in versions.values()}
    assert scores_today(settings, runs) == {}, "nothing scored yet: nothing remembered"
    computed = scores_today(settings, runs, compute=True)
    assert sorted(computed) == sorted(runs) and all(rmse > 0 for rmse in computed.values())

    def no_loading(*args, **kwargs):
        raise AssertionError("a remembered score loaded the model")

    monkeypatch.setattr("mlops_cli.registry.scoring.metrics_on", no_loading)
    assert scores_today(settings, runs) == computed
    assert scores_today(settings, runs, compute=True) == computed
    test = current_test_set(engine)
    assert cached_metrics(settings, engine, versions[0], runs[versions[0]], test)["rmse"] == computed[versions[0]]
    with pytest.raises(AssertionError, match="loaded the model"):  # no run: nothing to remember it by
        cached_metrics(settings, engine, versions[0], None, test)


def test_the_versions_list_carries_todays_remembered_rmse(trained) -> None:
    settings, _, versions = trained
    before = versions_today(settings)
    assert [v["version"] for v in before] == sorted(versions.values()) and all(v["rmse_today"] is None for v in before)
    computed = versions_today(settings, compute=True)
    assert all(v["rmse_today"] > 0 for v in computed)
    assert [v["rmse_today"] for v in versions_today(settings)] == [v["rmse_today"] for v in computed]
