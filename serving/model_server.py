"""The model behind the inference API: load a registered version, fold it into the fast
path when possible, swap it atomically, retry while MLflow is away, follow the alias."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from mlops_cli.errors import MlopsError, ModelNotLoadable, ModelRefused, RegistryUnavailable, VersionNotFound

if TYPE_CHECKING:
    from mlops_cli.config import Settings
    from mlops_cli.pipeline.interval import Interval

log = logging.getLogger("mlops.serving")
Predictor = Callable[[list[dict[str, Any]]], list[float]]


@dataclass(kw_only=True)
class LoadedModel:
    name: str
    version: int
    alias: str | None
    run_id: str | None
    metrics: dict[str, float | None]
    kind: str  # "fast" (folded linear), "trees" (compiled trees) or "pyfunc"
    predict: Predictor = field(repr=False)
    fallback_reason: str | None = None
    trained_round: int | None = None  # the data DB round it was trained in (its training rows: drift)
    loaded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    # the values each text feature took in training (empty: the model's encoders are not known)
    known: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)
    # prices and unseen fields in one pass (the fast path's); else predict + unseen
    marked: Callable[[list[dict[str, Any]]], tuple[list[float], list[list[str]]]] | None = field(
        default=None, repr=False
    )
    interval: Interval | None = None  # the calibrated price range it was registered with
    # exact contributions per listing, when the model has them: (rows, prices) → explanations
    explainer: Callable[[list[dict[str, Any]], list[float]], list[dict[str, Any]]] | None = field(
        default=None, repr=False
    )
    explain_reason: str | None = None  # why it has none

    def predict_marked(self, rows: list[dict[str, Any]]) -> tuple[list[float], list[list[str]]]:
        if self.marked is not None:
            return self.marked(rows)
        return self.predict(rows), self.unseen(rows)

    def unseen(self, rows: list[dict[str, Any]]) -> list[list[str]]:
        """Per listing, the text fields whose value the model never saw in training: it was
        answered, but from the pooled "unknown" category (e.g. "Atlantis", or "TX" for "Texas")."""
        from serving.encoding import category_key

        return [
            [
                name
                for name, values in self.known.items()
                if row.get(name) is not None and category_key(name, row[name], values)[1]
            ]
            for row in rows
        ]

    @cached_property
    def ref_json(self) -> str:
        """``{"name", "version", "alias"}`` as JSON, made once: every response names the model."""
        import json

        return json.dumps({"name": self.name, "version": self.version, "alias": self.alias})

    @cached_property
    def event_ref(self) -> tuple[str, int, str | None, str]:
        """What an inference event names of the model that answered (serving/events.PredictEvent.model)."""
        return (self.name, self.version, self.alias, self.kind)

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "alias": self.alias,
            "run_id": self.run_id,
            "metrics": self.metrics,
            "loaded_at": self.loaded_at,
            "path": self.kind,
            "fallback_reason": self.fallback_reason,
            "interval": self.interval.as_dict() if self.interval else None,
            "explain": self.explainer is not None,
            "explain_reason": self.explain_reason,
        }

    def explain(self, rows: list[dict[str, Any]], prices: list[float]) -> list[dict[str, Any]]:
        """Per listing, the exact contributions that add up to its price (pipeline/explain.py)."""
        if self.explainer is None:
            raise MlopsError(f"model version {self.version} has no exact explanation: {self.explain_reason}")
        return self.explainer(rows, prices)

    async def explain_async(self, rows: list[dict[str, Any]], prices: list[float]) -> list[dict[str, Any]]:
        """:meth:`explain` without holding up the event loop: the trees' TreeSHAP in the batcher's
        thread (serving/batcher.py), the folded linear terms (microseconds) inline, pandas in a
        worker thread."""
        if self.explainer is None or self.kind == "fast":
            return self.explain(rows, prices)
        explain_async = getattr(self.explainer, "explain_async", None)
        if explain_async is not None:
            return await explain_async(rows, prices)
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(self.explainer, rows, prices)


def pyfunc_predictor(model: Any) -> Predictor:
    """Predictions through MLflow's pyfunc: a DataFrame round trip, schema enforcement included."""
    from serving.encoding import _frame, normalised_rows

    def predict(rows: list[dict[str, Any]]) -> list[float]:
        return [float(v) for v in model.predict(_frame(normalised_rows(rows)))]

    return predict


def load_registered(settings: Settings, ref: str | int | None = None, allow_fast: bool = True) -> LoadedModel:
    """Load ``ref`` (a version number or alias; default the champion alias) from MLflow, from a
    local copy verified against its signature first (``MLOPS_API_ALLOW_UNSIGNED`` skips the check)."""
    from mlops_cli.registry.client import connect, resolve_version, version_info
    from mlops_cli.registry.info import METRICS
    from mlops_cli.registry.refs import version_number
    from mlops_cli.registry.signing import verified_model

    client = connect(settings)
    ref = settings.champion_alias if ref is None else ref
    mv = resolve_version(client, settings, ref)
    info = version_info(client, settings, mv, aliases={})
    alias = None if version_number(ref) is not None else str(ref)
    identity = {
        "name": settings.model_name,
        "version": int(mv.version),
        "alias": alias,
        "run_id": mv.run_id,
        "metrics": {key: info[key] for key in METRICS},
        "trained_round": info["round"],
    }
    try:
        with verified_model(settings, mv, check=not settings.api_allow_unsigned) as folder:
            return _load_from(folder, identity, allow_fast)
    except ModelRefused as exc:
        raise ModelRefused(f"{exc.message}; MLOPS_API_ALLOW_UNSIGNED=true would load it") from None


def _extras(fitted: Any) -> tuple[dict[str, Any], Any]:
    """What a registered estimator carries beside its predictions: its price range (and why it
    cannot explain, if so), and its exact explainer or None."""
    from mlops_cli.pipeline.explain import NotExplainable, explainer_for
    from mlops_cli.pipeline.interval import interval_of

    extras: dict[str, Any] = {"interval": interval_of(fitted)}
    try:
        return extras, explainer_for(fitted)
    except NotExplainable as exc:
        return {**extras, "explain_reason": str(exc)}, None


def _through_pandas(explainer: Any) -> Callable[[list[dict[str, Any]], list[float]], list[dict[str, Any]]]:
    """Explanations through the pipeline's own transform (any path that computes no features itself)."""

    def explain(rows: list[dict[str, Any]], prices: list[float]) -> list[dict[str, Any]]:
        from mlops_cli.pipeline.explain import answers
        from serving.encoding import _frame, normalised_rows

        return answers(explainer.scale, *explainer.terms(_frame(normalised_rows(rows))), prices)

    return explain


def _load_from(folder: Any, identity: dict[str, Any], allow_fast: bool) -> LoadedModel:
    """The verified model in ``folder`` on the fastest path it allows: folded linear, compiled
    trees, else MLflow's pyfunc."""
    from mlops_cli.registry.flavours import load_estimator, load_pyfunc
    from mlops_cli.registry.scoring import known_categories
    from serving.encoding import NotFoldable
    from serving.fastpath import FoldedExplainer, fold

    uri = str(folder)
    reason = "fast path disabled" if not allow_fast else None
    exact = None  # the exact explainer, once the estimator is loaded
    try:
        if allow_fast:
            try:
                fitted = load_estimator(uri)
                identity["known"] = {k: frozenset(v) for k, v in known_categories(fitted).items()}
                extras, exact = _extras(fitted)
                identity.update(extras)
                folded = fold(fitted)
                if exact is not None:
                    identity["explainer"] = FoldedExplainer(folded, exact)
                return LoadedModel(**identity, kind="fast", predict=folded.predict, marked=folded.predict_marked)
            except NotFoldable as exc:
                reason = f"not additive: {exc}"
                try:  # a tree ensemble: compiled for treelite's evaluator
                    from serving.trees import compile_trees

                    trees = compile_trees(fitted)
                    if exact is not None:  # TreeSHAP on the compiled matrix; else through the pipeline
                        identity["explainer"] = (
                            trees.explainer(exact) if exact.kind == "treeshap" else _through_pandas(exact)
                        )
                    return LoadedModel(**identity, kind="trees", predict=trees.predict, marked=trees.predict_marked)
                except NotFoldable as tree_exc:
                    reason += f"; not compiled as trees: {tree_exc}"
            except MlopsError:
                raise
            except Exception as exc:  # not an sklearn flavour, or it failed to load as one
                reason = f"not loadable as sklearn: {type(exc).__name__}"
        model = load_pyfunc(uri)
    except MlopsError:
        raise
    except Exception as exc:
        raise ModelNotLoadable(
            f"cannot load {identity['name']} v{identity['version']}: {type(exc).__name__}: {exc}"
        ) from None
    if "interval" not in identity:  # the fast path was not tried: the estimator behind pyfunc
        try:
            extras, exact = _extras(model.get_raw_model())
            identity.update(extras)
        except Exception:  # not an sklearn flavour: no range, no explanation
            identity["explain_reason"] = "not an sklearn model"
    if exact is not None:
        identity["explainer"] = _through_pandas(exact)
    log.warning("serving %s v%s through pyfunc: %s", identity["name"], identity["version"], reason)
    return LoadedModel(**identity, kind="pyfunc", predict=pyfunc_predictor(model), fallback_reason=reason)


class ModelHolder:
    """Holds the served model. A swap is one reference assignment: a request that already
    took ``current`` finishes on that model; a failed load leaves it in place."""

    def __init__(
        self,
        settings: Settings,
        loader: Callable[[Settings, str | int | None], LoadedModel] = load_registered,
        on_load: Callable[[str, LoadedModel | None], None] | None = None,
        on_champion: Callable[[int, dict[str, str]], None] | None = None,
        target: str | int | None = None,
    ) -> None:
        self.settings = settings
        # what this holder serves and follows: the champion alias by default; the shadow holder
        # follows the challenger alias, or holds one version
        self.target = settings.champion_alias if target is None else target
        self.optional = target is not None  # a missing shadow is normal: not an error
        self.loader = loader
        self.on_load = on_load
        self.on_champion = on_champion  # the champion version's tags, at every alias check
        self.current: LoadedModel | None = None
        self.last_error: str | None = "the first load has not finished"
        self.alias_target: int | None = None  # where the alias pointed at the last load or check
        self.alias_seen: int | None = None  # where it pointed at the last check
        self.refused_version: int | None = None  # the alias's version the watcher refused to load
        self.no_champion = False  # the registry answered, and no version holds the champion alias
        self._load_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def load(self, ref: str | int | None = None) -> LoadedModel:
        """Load and swap in ``ref`` (default: the champion alias). Raises on failure."""
        with self._load_lock:
            wanted = self.target if ref is None else ref
            try:
                model = self.loader(self.settings, ref if ref is not None or not self.optional else self.target)
            except Exception as exc:
                if str(exc) != self.last_error:  # the same failure again (retries) is not news
                    said = f"{exc.message} — {exc.hint}" if isinstance(exc, MlopsError) and exc.hint else str(exc)
                    if (self.current is None and isinstance(exc, RegistryUnavailable)) or (
                        self.optional and isinstance(exc, VersionNotFound)
                    ):
                        # a first load while MLflow is still starting: expected, retried, not an error
                        log.info("waiting for MLflow to load %s@%s: %s", self.settings.model_name, wanted, said)
                    else:
                        kept = f"still serving v{self.current.version}" if self.current else "no model served yet"
                        log.error("could not load %s@%s: %s; %s", self.settings.model_name, wanted, said, kept)
                self.last_error = str(exc)
                self.no_champion = ref is None and isinstance(exc, VersionNotFound)
                if self.on_load:
                    self.on_load("refused" if isinstance(exc, ModelRefused) else "failure", None)
                raise
            previous = self.current
            self.current = model
            self.last_error = None
            self.no_champion = False
            if model.alias == self.target:
                self.alias_target = model.version
            if self.on_load:
                self.on_load("success", model)
            change = f"v{previous.version} → v{model.version}" if previous else f"v{model.version}"
            log.info(
                "%s %s %s (%s, %s path)",
                "shadow:" if self.optional else "serving",
                model.name,
                change,
                model.alias or f"version {model.version}",
                model.kind,
            )
            return model

    def _alias_moved(self) -> bool:
        from mlops_cli.registry.client import alias_version, connect

        if not isinstance(self.target, str):
            return False  # one version, held: nothing to follow
        target = alias_version(connect(self.settings), self.settings, self.target)
        version = int(target.version) if target else None
        if target is not None and self.on_champion:
            self.on_champion(version, dict(target.tags or {}))
        self.alias_seen = version
        # a version refused once is not tried again (nor counted again) until the alias moves on
        return version is not None and version != self.alias_target and version != self.refused_version

    def _background(self) -> None:
        outage: str | None = None  # what the last failed check said: logged once, not every interval
        while not self._stop.is_set():
            if self.current is None:
                try:
                    self.load()
                except Exception:  # keep trying: MLflow may come back (load() logged why)
                    pass
                # a shadow that is not there (no challenger yet) is looked for at the watch pace
                pace = self.settings.api_retry_interval
                self._stop.wait(max(pace, self.settings.api_watch_interval) if self.optional else pace)
                continue
            interval = self.settings.api_watch_interval
            if not interval:
                self._stop.wait(3600)
                continue
            self._stop.wait(interval)
            if self._stop.is_set():
                break
            try:
                moved = self._alias_moved()
            except Exception as exc:  # an MLflow outage must not stop serving
                if str(exc) != outage:
                    log.warning("alias check failed, still serving v%s: %s", self.current.version, exc)
                outage = str(exc)
                continue
            if outage is not None:
                log.info("the registry answers again (still serving v%s)", self.current.version)
                outage = None
            if moved:
                try:
                    self.load()
                except ModelRefused:
                    self.refused_version = self.alias_seen
                except Exception:  # load() logged why; the current model stays
                    pass

    def start(self) -> None:
        """Load in the background (retrying until MLflow answers), then follow the alias."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._background, name="model-loader", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def wait_until_loaded(holder: ModelHolder, timeout: float) -> LoadedModel | None:
    deadline = time.monotonic() + timeout
    while holder.current is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return holder.current
