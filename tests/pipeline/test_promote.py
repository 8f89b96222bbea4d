"""Champion/challenger against a real MLflow (SQLite backend) and real trained versions."""

import pytest

from mlops_cli.errors import PromotionRefused, RegistryError
from mlops_cli.pipeline.promote import compare, promote_challenger, promote_if_better, rollback
from mlops_cli.registry.light import LightRegistry
from mlops_cli.registry.models import alias_state, list_versions
from mlops_cli.registry.scoring import rmse_on
from mlops_cli.store.frames import read_table
from mlops_cli.store.promotions import promotion_rows
from mlops_cli.store.tables import clean_data
from tests.conftest import event_row


def test_first_version_becomes_champion_and_is_recorded(trained) -> None:
    settings, engine, _ = trained
    result = promote_if_better(settings, 1, who="test")
    assert result.promoted and result.champion_version == 1 and result.previous_champion is None
    assert alias_state(settings).champion == 1
    record = promotion_rows(engine, settings.model_name)[-1]
    assert (record["actor"], record["action"], record["old_version"], record["new_version"]) == (
        "test",
        "first",
        None,
        1,
    )


def test_better_or_equal_moves_the_champion_worse_does_not(trained) -> None:
    settings, engine, _ = trained
    test = read_table(engine, clean_data, clean_data.c.split == "test")
    rmse = {v: rmse_on(settings, v, test) for v in (1, 2, 3)}
    best, worst = min(rmse, key=rmse.get), max(rmse, key=rmse.get)
    promote_if_better(settings, best)
    kept = compare(LightRegistry(settings), settings, worst, test)  # the pipeline's comparison
    assert not kept.promoted and kept.champion_version == best
    assert alias_state(settings).champion == best
    assert kept.version_rmse == pytest.approx(rmse[worst]) and kept.champion_rmse == pytest.approx(rmse[best])
    equal = promote_if_better(settings, best)  # the champion itself: nothing to do
    assert not equal.promoted and "already champion" in equal.reason


def test_promotion_records_both_rmses_on_the_same_test_set(trained) -> None:
    settings, engine, _ = trained
    test = read_table(engine, clean_data, clean_data.c.split == "test")
    rmse = {v: rmse_on(settings, v, test) for v in (1, 3)}
    promote_if_better(settings, 1)
    result = promote_if_better(settings, 3, force=True)
    record = promotion_rows(engine, settings.model_name)[-1]
    assert record["old_version"] == 1 and record["new_version"] == 3
    assert record["old_rmse"] == pytest.approx(rmse[1]) and record["new_rmse"] == pytest.approx(rmse[3])
    assert record["test_rows"] == len(test) == result.test_rows
    assert record["action"] == ("manual" if rmse[3] <= rmse[1] else "forced")


def test_manual_promotion_of_a_worse_version_needs_force(trained) -> None:
    settings, engine, _ = trained
    test = read_table(engine, clean_data, clean_data.c.split == "test")
    rmse = {v: rmse_on(settings, v, test) for v in (1, 2, 3)}
    best, worst = min(rmse, key=rmse.get), max(rmse, key=rmse.get)
    promote_if_better(settings, best)
    with pytest.raises(PromotionRefused, match="--force"):
        promote_if_better(settings, worst)
    assert alias_state(settings).champion == best
    forced = promote_if_better(settings, worst, force=True)
    assert forced.promoted and alias_state(settings).champion == worst
    assert promotion_rows(engine, settings.model_name)[-1]["action"] == "forced"


def test_rollback_walks_back_the_champion_history(trained) -> None:
    settings, engine, _ = trained
    for version in (1, 2, 3):
        promote_if_better(settings, version, force=True)
    assert rollback(settings).champion_version == 2
    assert rollback(settings).champion_version == 1
    with pytest.raises(RegistryError, match="no previous champion"):
        rollback(settings)
    assert alias_state(settings).champion == 1
    assert [r["action"] for r in promotion_rows(engine, settings.model_name)][-2:] == ["rollback", "rollback"]


def test_auto_promotes_the_challenger_only_when_there_is_one(trained) -> None:
    settings, engine, _ = trained
    promote_if_better(settings, 1)
    with pytest.raises(RegistryError, match="no 'challenger' alias"):
        promote_challenger(settings)


def test_versions_carry_metrics_and_batches(trained) -> None:
    settings, _, _ = trained
    versions = list_versions(settings)
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert [v["batches"] for v in versions] == [[0], [0, 1], [0, 1, 2, 3]]
    assert all(v["rmse"] > 0 and 0 < v["r2"] <= 1 and v["rows_train"] > 0 for v in versions)


def test_unknown_version_is_a_clear_error(trained) -> None:
    settings, engine, _ = trained
    with pytest.raises(RegistryError, match="no version 42"):
        promote_if_better(settings, 42)


def test_a_rule_asking_for_shadow_evidence_waits_for_live_requests(trained) -> None:
    """'shadow >= 3': the challenger is not promoted on its test scores alone; once the champion
    has answered three requests that it priced in shadow (the inference events), it is."""
    from datetime import UTC, datetime

    from mlops_cli.store.events import write_events

    settings, engine, _ = trained
    promote_if_better(settings, 1)
    strict = settings.model_copy(update={"promote_rule": "rmse <= +1000% and shadow >= 3"})
    test = read_table(engine, clean_data, clean_data.c.split == "test")
    before = compare(LightRegistry(strict), strict, 3, test)
    assert not before.promoted and before.verdict["deciding"] == "shadow >= +3"
    assert "0 live request(s) priced in shadow of champion v1" in before.reason

    now = datetime.now(UTC)
    shadowed = [event_row(f"r{i}", now, shadow=(3, 2.0, 0.1)) for i in (1, 2)]
    others = [event_row("r3", now, shadow=(2, 2.0, 0.1)), event_row("r4", now)]  # another shadow; none
    write_events(engine, [*shadowed, shadowed[0], *others])  # r1 twice: two listings of one request
    assert not compare(LightRegistry(strict), strict, 3, test).promoted, "two requests are not three"
    write_events(engine, [event_row("r5", now, shadow=(3, 2.0, 0.1))])
    after = compare(LightRegistry(strict), strict, 3, test)
    assert after.promoted and after.candidate_metrics["shadow"] == 3 and after.verdict["passed"]


@pytest.mark.parametrize("rule", ["shadow >= 10%", "shadow <= 5", "shadow >= -1"])
def test_shadow_evidence_is_a_number_of_requests_at_least(rule: str) -> None:
    from mlops_cli.rule import parse_rule

    with pytest.raises(ValueError, match="number of requests"):
        parse_rule(rule)


def test_a_move_asks_the_api_to_reload_after_the_lock_and_a_missing_api_is_a_warning(trained) -> None:
    from mlops_cli.ops.netutil import free_port

    settings, _, versions = trained
    promote_if_better(settings, versions[0])
    nobody = settings.model_copy(update={"api_url": f"http://127.0.0.1:{free_port()}"})
    quiet = promote_if_better(nobody, versions[3], force=True)
    assert quiet.promoted and quiet.reload_warning is None, "not asked: nothing said"
    moved = rollback(nobody, reload_api=True)
    assert moved.promoted and "not reachable; it loads the champion when it starts" in moved.reload_warning
    assert alias_state(settings).champion == versions[0], "the move stands whatever the API says"
    same = promote_if_better(nobody, versions[0], reload_api=True)
    assert not same.promoted and same.reload_warning is None, "nothing moved: nothing to reload"
