"""The dataset the data DB holds and the source it comes from: claimed at the start of every run
(a data DB never mixes two sources), started again with ``--restart``, and the loop's
housekeeping of inference events past their retention."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from mlops_cli.errors import SourceChanged
from mlops_cli.store import meta
from mlops_cli.store.tables import now

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from mlops_cli.pipeline.context import Pipeline


def _start_dataset(conn: Connection, pipe: Pipeline) -> None:
    meta.start_dataset(
        conn,
        dataset=uuid.uuid4().hex[:12],
        kind=pipe.source.kind,
        identity=pipe.source.identity(),
        setting=pipe.settings.data_source,
        created=now().isoformat(timespec="seconds"),
    )


def _follow_the_dataset(pipe: Pipeline, conn: Connection, stored: str) -> bool:
    """No source named (flag, MLOPS_DATA_SOURCE, config file): take the dataset's own source,
    e.g. the stack's data API after `mlops up --train`, so that `mlops train --all` goes on
    with it instead of refusing the built-in generator. False when that is not possible."""
    setting = meta.dataset_source(conn)[1]
    if "data_source" in pipe.settings.model_fields_set or setting in (None, pipe.settings.data_source):
        return False
    chosen, pipe.settings = pipe.settings, pipe.settings.model_copy(update={"data_source": setting})
    pipe.__dict__.pop("source", None)
    if pipe.source.identity() != stored:  # another group or day: not the same dataset after all
        pipe.settings = chosen
        pipe.__dict__.pop("source", None)
        return False
    pipe.followed = True
    pipe.say(f"following the dataset's source: {setting}")
    return True


def claim_dataset(pipe: Pipeline) -> None:
    """Check that the data DB's dataset comes from the configured source (or start one); with
    no source configured, follow the one the dataset was started from."""
    with pipe.engine.begin() as conn:
        stored = meta.dataset_source(conn)[0]
        if stored is None:
            _start_dataset(conn, pipe)
        elif stored != pipe.source.identity() and not _follow_the_dataset(pipe, conn, stored):
            raise SourceChanged(
                f"the data DB holds a dataset from {stored}, not from {pipe.source.identity()}",
                hint="`mlops train --all --restart` starts a fresh dataset from the new source (stored rows are "
                "deleted); or point MLOPS_DATA_DB_URL at another database",
            )
    pipe.__dict__.pop("dataset_id", None)


def restart_dataset(pipe: Pipeline) -> None:
    """``--restart``: the source starts again at its first batch; stored rows are forgotten.

    Registered versions and the promotion history stay: the next champion is compared with
    the current one as usual.
    """
    from mlops_cli.store.meta import wipe_dataset

    pipe.say("restarting the source")
    pipe.source.restart()
    with pipe.engine.begin() as conn:
        wipe_dataset(conn)
        _start_dataset(conn, pipe)
    pipe.__dict__.pop("dataset_id", None)


def age_out_events(pipe: Pipeline) -> int:
    """The loop's housekeeping: delete inference events older than MLOPS_API_EVENTS_RETENTION_DAYS
    (0 keeps them all); the number deleted."""
    from datetime import timedelta

    from mlops_cli.store.events import delete_events_before
    from mlops_cli.store.tables import now

    days = pipe.settings.api_events_retention_days
    return delete_events_before(pipe.engine, now() - timedelta(days=days)) if days > 0 else 0
