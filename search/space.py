"""The Optuna search space (define-by-run) and the searcher Ray Tune drives.

The model family is a categorical choice; each family's parameters are sampled only
when it is chosen, under the family's prefix (``lstm/lr``), so two families never share
a distribution. Ray Tune's `OptunaSearch` turns ``lstm/lr`` into a nested config, which
`flat_config` turns back into the flat dict `trainables.split_flat_config` reads::

    {"model": "lstm", "lstm": {"lr": 0.003, "num_layers": 2, "units_0": 48, "units_1": 16}}
    -> {"model": "lstm", "lr": 0.003, "num_layers": 2, "units_0": 48, "units_1": 16, <spec.train>}
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

from search.ranges import ModelSpace, Param
from search.spec import SweepSpec
from seqsweep.errors import ConfigError
from trainables.configs import DEFAULT_EMBEDDING_RANGE, MODEL_CONFIGS

__all__ = ["SearchSpace", "expand_grid", "make_searcher", "with_token_defaults", "TRIAL_METRIC"]

#: What every trial reports and the searcher and schedulers optimise (higher is better).
TRIAL_METRIC = "objective"


class SearchSpace:
    """A define-by-run space: ``space(optuna_trial) -> constants`` (a picklable object, so
    the searcher's state survives `Tuner.restore`)."""

    def __init__(self, models: tuple[ModelSpace, ...]) -> None:
        self.models = {m.name: m for m in models}

    def __call__(self, trial: Any) -> dict[str, Any]:
        names = list(self.models)
        family = trial.suggest_categorical("model", names) if len(names) > 1 else names[0]
        space = self.models[family]
        fixed: dict[str, Any] = {}
        for key, param in space.params.items():
            value = param.suggest(trial, f"{family}/{key}")
            if param.kind == "fixed":
                fixed[f"{family}/{key}"] = value
        for seq, (count_key, param) in space.per_layer.items():
            count = space.params[count_key].suggest(trial, f"{family}/{count_key}") \
                if count_key in space.params else None
            if count is None:  # the layer count is not searched: the config's default
                count = len(getattr(MODEL_CONFIGS[family](), seq))
                fixed[f"{family}/{count_key}"] = count
            for i in range(int(count)):
                value = param.suggest(trial, f"{family}/{seq}_{i}")
                if param.kind == "fixed":
                    fixed[f"{family}/{seq}_{i}"] = value
        out = {"model": family} if len(names) == 1 else {}
        out.update(fixed)
        return out


def with_token_defaults(spec: SweepSpec, *, tokens: bool) -> SweepSpec:
    """On a token feature set, every family that embeds ids and whose spec does not give
    ``embedding_dim`` searches `trainables.configs.DEFAULT_EMBEDDING_RANGE` (the grid
    sampler keeps the config's default, as a log range cannot be enumerated). A family
    whose config refuses token data (``tokens = False``: the ROCKET families) raises
    `ConfigError` before any trial runs."""
    refused = [m.name for m in spec.models if tokens and not getattr(MODEL_CONFIGS[m.name], "tokens", True)]
    if refused:
        raise ConfigError(f"models.{refused[0]}", "takes real-valued frames, not a token feature set (ids): "
                          "drop it from this sweep's models", f"feature set {spec.feature_set!r} holds token ids")
    if not tokens or spec.search.sampler == "grid":
        return spec
    models = []
    for space in spec.models:
        embeds = "embedding_dim" in MODEL_CONFIGS[space.name].field_names()
        if embeds and "embedding_dim" not in space.params:
            where = f"models.{space.name}.embedding_dim (default for token data)"
            space = replace(space, params={**space.params,
                                           "embedding_dim": Param.parse(where, dict(DEFAULT_EMBEDDING_RANGE))})
        models.append(space)
    return spec.model_copy(update={"models": tuple(models)})


def expand_grid(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every combination of every family's values, as nested trial configs (grid sampler)."""
    points: list[dict[str, Any]] = []
    for space in spec.models:
        keys, values = [], []
        for key, param in space.params.items():
            keys.append(key)
            values.append(param.grid_values(f"models.{space.name}.{key}"))
        base = list(itertools.product(*values)) or [()]
        for combo in base:
            point = dict(zip(keys, combo))
            layers = [[]]
            for seq, (count_key, param) in space.per_layer.items():
                count = int(point.get(count_key, len(getattr(MODEL_CONFIGS[space.name](), seq))))
                per = param.grid_values(f"models.{space.name}.{seq}")
                layers = [prev + [(f"{seq}_{i}", v) for i, v in enumerate(widths)]
                          for prev in layers for widths in itertools.product(per, repeat=count)]
                point.setdefault(count_key, count)
            for extra in layers:
                points.append({"model": space.name, space.name: {**point, **dict(extra)}})
    return points


class _GridSpace:
    """Define-by-run over an enumerated grid: one categorical index, mapped to its point."""

    def __init__(self, points: list[dict[str, Any]]) -> None:
        self.points = points

    def __call__(self, trial: Any) -> dict[str, Any]:
        index = trial.suggest_categorical("grid_point", list(range(len(self.points))))
        point = self.points[index]
        return {"model": point["model"], **{f"{point['model']}/{k}": v for k, v in point[point["model"]].items()}}


def make_sampler(spec: SweepSpec, *, grid_size: int | None = None):
    """The Optuna sampler the spec names, seeded with ``search.seed``."""
    import optuna

    seed = spec.search.seed
    if spec.search.sampler == "tpe":
        # multivariate + group model the conditional (per-family) space jointly; the
        # constant liar keeps concurrent trials from all asking for the same point
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True,
                                          n_startup_trials=max(4, min(10, spec.search.num_samples // 3)))
    if spec.search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.search.sampler == "cmaes":
        # CMA-ES models numbers; the family (categorical) is sampled independently
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    return optuna.samplers.GridSampler({"grid_point": list(range(grid_size or 1))}, seed=seed)


def make_searcher(spec: SweepSpec):
    """`TruthfulOptunaSearch` over the spec's space (for ``grid`` the exact list of grid
    points), its study in ``<experiment>/optuna.log`` when the experiment is on a local disk."""
    import warnings

    from search.searcher import TruthfulOptunaSearch, journal_storage, objective_name

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna flags multivariate/group TPE as experimental
        if spec.search.sampler == "grid":
            points = expand_grid(spec)
            space: Any = _GridSpace(points)
            sampler = make_sampler(spec, grid_size=len(points))
        else:
            space = SearchSpace(spec.models)
            sampler = make_sampler(spec)
        return TruthfulOptunaSearch(space=space, metric=TRIAL_METRIC, mode="max", sampler=sampler,
                                    study_name=spec.name, storage=journal_storage(spec.experiment_path),
                                    cv_metric=spec.metric, objective_name=objective_name(
                                        spec.metric, spec.objective.type, spec.objective.std_weight))
