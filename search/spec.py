"""The sweep spec: one YAML file, read once with a safe loader into frozen, typed config.

A spec names the data (``store``, ``dataset``, ``feature_set``), how a trial is scored
(``metric``, ``objective``, ``cv``), how configurations are chosen (``search``), which
model families are searched and over what ranges (``models``), what each trial gets
(``resources``), where results go (``storage``) and how ensembles are built
(``ensemble``). Every error names the file, the key, the rule and the value found.

A hyperparameter under ``models.<family>`` is written one of three ways::

    dropout: 0.2                             # fixed
    batch_size: [16, 32, 64]                 # a choice among values
    lr: {low: 1.0e-4, high: 1.0e-2, log: true}   # a range (int if both ends are ints)

For the per-layer fields (the LSTM's ``units``, the CNNs' ``filters``) the range is
sampled once per layer, each layer its own parameter (``units_0``, ``units_1``, ...),
with the layer count (``num_layers`` / ``num_blocks``) a parameter of its own.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from seqsweep.errors import ConfigError
from trainables.configs import TrainConfig
from trainables.metrics import METRICS
from trainables.registry import MODEL_CONFIGS

__all__ = [
    "Param",
    "ModelSpace",
    "CVSpec",
    "SearchSpec",
    "ResourceSpec",
    "EnsembleSpec",
    "SweepSpec",
    "load_spec",
    "METRICS",
    "SAMPLERS",
    "ENSEMBLE_METHODS",
]

SAMPLERS = ("tpe", "random", "cmaes", "grid")
SCHEDULERS = ("none", "asha", "wilcoxon")
REFITS = ("bag", "full")
FUSED = ("auto", True, False)
OBJECTIVES = ("mean", "mean_minus_std")
#: the ensembles a spec may ask for (results also builds ``weighted_logloss`` when
#: ``ensemble.fit_weights`` is true)
ENSEMBLE_METHODS = ("soft", "max", "vote", "weighted")


def _keys(where: str, data: Any, allowed: tuple[str, ...], *, required: tuple[str, ...] = ()) -> dict:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(where, "must be a mapping of keys to values", data)
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}" if where else unknown[0],
                          f"is not a known key; allowed: {list(allowed)}", unknown[0])
    for key in required:
        if data.get(key) in (None, ""):
            raise ConfigError(f"{where}.{key}" if where else key, "is required", None)
    return data


def _number(where: str, value: Any, *, kind: type = float, low: float | None = None,
            high: float | None = None) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not float(value).is_integer()):
        raise ConfigError(where, f"must be {'an integer' if kind is int else 'a number'}", value)
    value = kind(value)
    if low is not None and value < low:
        raise ConfigError(where, f"must be >= {low}", value)
    if high is not None and value > high:
        raise ConfigError(where, f"must be <= {high}", value)
    return value


def _choice(where: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(where, f"must be one of {list(allowed)}", value)
    return value


# ---- hyperparameter ranges ------------------------------------------------------------------
@dataclass(frozen=True)
class Param:
    """One hyperparameter: ``fixed`` (``value``), ``choice`` (``choices``), or a
    ``int``/``float`` range from ``low`` to ``high`` (``log`` scale, optional ``step``)."""

    kind: str
    value: Any = None
    choices: tuple = ()
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None

    @classmethod
    def parse(cls, where: str, raw: Any) -> Param:
        if isinstance(raw, list):
            if not raw:
                raise ConfigError(where, "a list of choices needs at least one value", raw)
            if any(isinstance(v, (dict, list)) for v in raw):
                raise ConfigError(where, "choices must be plain values (numbers, strings, booleans)", raw)
            return cls("choice", choices=tuple(raw))
        if isinstance(raw, dict):
            _keys(where, raw, ("low", "high", "log", "step"), required=("low", "high"))
            low, high = raw["low"], raw["high"]
            is_int = all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high))
            kind = int if is_int else float
            low = _number(f"{where}.low", low, kind=kind)
            high = _number(f"{where}.high", high, kind=kind)
            if not low < high:
                raise ConfigError(f"{where}", "a range needs low < high", f"low={low}, high={high}")
            log = raw.get("log", False)
            if not isinstance(log, bool):
                raise ConfigError(f"{where}.log", "must be true or false", log)
            if log and low <= 0:
                raise ConfigError(f"{where}.low", "must be > 0 on a log scale", low)
            step = raw.get("step")
            if step is not None:
                step = _number(f"{where}.step", step, kind=kind, low=0)
                if log:
                    raise ConfigError(f"{where}.step", "cannot be combined with log: true", step)
            return cls("int" if is_int else "float", low=low, high=high, log=log, step=step)
        return cls("fixed", value=raw)

    def suggest(self, trial: Any, name: str) -> Any:
        """Ask an Optuna trial for this parameter under ``name``."""
        if self.kind == "fixed":
            return self.value
        if self.kind == "choice":
            return trial.suggest_categorical(name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)

    def grid_values(self, where: str) -> list:
        if self.kind == "fixed":
            return [self.value]
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "int" and not self.log:
            step = int(self.step or 1)
            return list(range(int(self.low), int(self.high) + 1, step))
        raise ConfigError(where, "the grid sampler needs fixed values, lists of choices or integer ranges",
                          f"a {'log-scale ' if self.log else ''}{self.kind} range")


@dataclass(frozen=True)
class ModelSpace:
    """One model family's search space: its parameters, and per-layer ranges."""

    name: str
    params: dict  # flat key -> Param
    per_layer: dict  # sequence field (units, filters) -> (count key, Param)

    @classmethod
    def parse(cls, where: str, name: str, raw: Any) -> ModelSpace:
        if name not in MODEL_CONFIGS:
            raise ConfigError(where, f"model family must be one of {list(MODEL_CONFIGS)}", name)
        config_cls = MODEL_CONFIGS[name]
        raw = {} if raw is None else raw
        if not isinstance(raw, dict):
            raise ConfigError(where, "must map hyperparameter names to values, lists or ranges", raw)
        sequence_fields = dict(config_cls.sequence_fields)
        allowed = sorted(set(config_cls.flat_key_names()) | set(TrainConfig.flat_key_names())
                         | set(sequence_fields))
        params, per_layer = {}, {}
        for key, value in raw.items():
            at = f"{where}.{key}"
            if key in sequence_fields:
                per_layer[key] = (sequence_fields[key], Param.parse(at, value))
            elif config_cls.is_flat_key(key) or TrainConfig.is_flat_key(key):
                params[key] = Param.parse(at, value)
            else:
                raise ConfigError(at, f"is not a hyperparameter of {name!r}; allowed: {allowed}", key)
        for seq, count_key in sequence_fields.items():
            if count_key in params and seq not in per_layer:
                raise ConfigError(f"{where}.{seq}", f"is needed when {count_key!r} is searched", None)
        return cls(name, params, per_layer)


# ---- the other sections ---------------------------------------------------------------------
@dataclass(frozen=True)
class CVSpec:
    """``folds`` stratified, group-aware folds of the train split, repeated for ``seeds`` seeds."""

    folds: int = 5
    seeds: int = 3

    @property
    def fits(self) -> int:
        return self.folds * self.seeds


@dataclass(frozen=True)
class SearchSpec:
    num_samples: int = 20
    max_concurrent: int | None = None
    sampler: str = "tpe"
    seed: int = 0
    scheduler: str = "none"
    grace_fits: int | None = None  # asha / wilcoxon: fits a trial always gets (default: one seed's folds)
    wilcoxon_p: float = 0.1  # wilcoxon: stop when the paired one-sided p-value is below this


@dataclass(frozen=True)
class ResourceSpec:
    cpus: float = 1.0
    gpus: float = 0.0


@dataclass(frozen=True)
class EnsembleSpec:
    top_k: int = 5
    methods: tuple[str, ...] = ENSEMBLE_METHODS
    refit: str = "bag"  # bag: deploy each member's CV fold models; full: refit on all train rows
    fit_weights: bool = False


@dataclass(frozen=True)
class SweepSpec:
    """A whole sweep, checked. Build it with `load_spec` (or `SweepSpec.from_dict`)."""

    name: str
    store: str
    dataset: str
    feature_set: str
    models: tuple[ModelSpace, ...]
    metric: str = "balanced_accuracy"
    objective: str = "mean"
    std_weight: float = 1.0
    cv: CVSpec = field(default_factory=CVSpec)
    search: SearchSpec = field(default_factory=SearchSpec)
    train: dict = field(default_factory=dict)  # fixed training settings for every trial
    fused: str | bool = "auto"  # train a trial's seeds x folds fits as one fused model: auto | true | false
    resources: ResourceSpec = field(default_factory=ResourceSpec)
    storage: str = "runs"
    ensemble: EnsembleSpec = field(default_factory=EnsembleSpec)
    source: str = "<dict>"

    TOP_KEYS = ("name", "store", "dataset", "feature_set", "metric", "objective", "cv", "search", "models",
                "train", "resources", "storage", "ensemble")

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<dict>", **overrides: Any) -> SweepSpec:
        """Check a parsed YAML mapping; ``overrides`` (None values ignored) replace top-level
        ``name``, ``store``, ``dataset``, ``feature_set``, ``storage`` and ``num_samples``."""
        pre = f"{source}: " if source else ""
        data = dict(_keys(pre.rstrip(": "), data, cls.TOP_KEYS))
        overrides = {k: v for k, v in overrides.items() if v is not None}
        num_samples = overrides.pop("num_samples", None)
        for key, value in overrides.items():
            if key not in ("name", "store", "dataset", "feature_set", "storage"):
                raise ConfigError(f"override {key!r}", "is not overridable", value)
            data[key] = value

        def text(key: str, default: str | None = None) -> str:
            value = data.get(key, default)
            if value in (None, "") or not isinstance(value, (str, int, float)):
                raise ConfigError(f"{pre}{key}", "is required: a non-empty string" + (
                    f" (or --{key.replace('_', '-')} on the command line)" if key != "name" else ""), value)
            return str(value)

        objective = data.get("objective", "mean")
        std_weight = 1.0
        if isinstance(objective, dict):
            obj = _keys(f"{pre}objective", objective, ("type", "std_weight"), required=("type",))
            std_weight = _number(f"{pre}objective.std_weight", obj.get("std_weight", 1.0), low=0)
            objective = obj["type"]
        objective = _choice(f"{pre}objective", objective, OBJECTIVES)

        cv_raw = _keys(f"{pre}cv", data.get("cv"), ("folds", "seeds"))
        cv = CVSpec(folds=_number(f"{pre}cv.folds", cv_raw.get("folds", 5), kind=int, low=2),
                    seeds=_number(f"{pre}cv.seeds", cv_raw.get("seeds", 3), kind=int, low=1))

        s = _keys(f"{pre}search", data.get("search"),
                  ("num_samples", "max_concurrent", "sampler", "seed", "scheduler", "grace_fits", "wilcoxon_p"))
        max_conc = s.get("max_concurrent")
        search = SearchSpec(
            num_samples=_number(f"{pre}search.num_samples", num_samples or s.get("num_samples", 20), kind=int, low=1),
            max_concurrent=None if max_conc is None else _number(f"{pre}search.max_concurrent", max_conc, kind=int, low=1),
            sampler=_choice(f"{pre}search.sampler", s.get("sampler", "tpe"), SAMPLERS),
            seed=_number(f"{pre}search.seed", s.get("seed", 0), kind=int, low=0),
            scheduler=_choice(f"{pre}search.scheduler", s.get("scheduler", "none"), SCHEDULERS),
            grace_fits=None if s.get("grace_fits") is None else _number(
                f"{pre}search.grace_fits", s["grace_fits"], kind=int, low=1, high=cv.fits),
            wilcoxon_p=_number(f"{pre}search.wilcoxon_p", s.get("wilcoxon_p", 0.1), low=0, high=1),
        )

        models_raw = data.get("models")
        if not isinstance(models_raw, dict) or not models_raw:
            raise ConfigError(f"{pre}models", f"must map one or more model families ({list(MODEL_CONFIGS)}) "
                                              "to their search ranges", models_raw)
        models = tuple(ModelSpace.parse(f"{pre}models.{n}", n, r) for n, r in models_raw.items())

        train_raw = dict(_keys(f"{pre}train", data.get("train"), (*TrainConfig.flat_key_names(), "fused")))
        fused = train_raw.pop("fused", "auto")
        if fused not in FUSED:
            raise ConfigError(f"{pre}train.fused", "must be auto, true or false", fused)
        TrainConfig.from_flat(train_raw)  # checks every fixed training value once, here

        r = _keys(f"{pre}resources", data.get("resources"), ("cpus", "gpus"))
        resources = ResourceSpec(cpus=_number(f"{pre}resources.cpus", r.get("cpus", 1.0), low=0.01),
                                 gpus=_number(f"{pre}resources.gpus", r.get("gpus", 0.0), low=0))
        if resources.gpus > 1 and not float(resources.gpus).is_integer():
            raise ConfigError(f"{pre}resources.gpus", "above 1 must be a whole number of GPUs", resources.gpus)

        e = _keys(f"{pre}ensemble", data.get("ensemble"), ("top_k", "methods", "refit", "fit_weights"))
        methods = e.get("methods", list(ENSEMBLE_METHODS))
        if isinstance(methods, str):
            methods = [m.strip() for m in methods.split(",")]
        for m in methods:
            _choice(f"{pre}ensemble.methods", m, ENSEMBLE_METHODS)
        ensemble = EnsembleSpec(top_k=_number(f"{pre}ensemble.top_k", e.get("top_k", 5), kind=int, low=1),
                                methods=tuple(methods),
                                refit=_choice(f"{pre}ensemble.refit", e.get("refit", "bag"), REFITS),
                                fit_weights=bool(e.get("fit_weights", False)))

        spec = cls(
            name=text("name"), store=text("store"), dataset=text("dataset"), feature_set=text("feature_set"),
            models=models, metric=_choice(f"{pre}metric", data.get("metric", "balanced_accuracy"), METRICS),
            objective=objective, std_weight=std_weight, cv=cv, search=search,
            train=dict(train_raw), fused=fused, resources=resources,
            storage=text("storage", "runs"), ensemble=ensemble, source=source,
        )
        if search.sampler == "grid":
            from search.space import expand_grid

            expand_grid(spec)  # every range must be enumerable
        return spec

    def with_overrides(self, **overrides: Any) -> SweepSpec:
        overrides = {k: v for k, v in overrides.items() if v is not None}
        if "num_samples" in overrides:
            overrides["search"] = replace(self.search, num_samples=int(overrides.pop("num_samples")))
        return replace(self, **overrides)

    # ---- derived ------------------------------------------------------------------------
    @property
    def storage_path(self) -> str:
        """Ray Tune's storage: a URI as given, a local path made absolute."""
        return self.storage if "://" in self.storage else os.path.abspath(self.storage)

    @property
    def experiment_path(self) -> str:
        return f"{self.storage_path.rstrip('/')}/{self.name}"

    def objective_of(self, mean: float, std: float) -> float:
        if self.objective == "mean_minus_std":
            return mean - self.std_weight * (0.0 if math.isnan(std) else std)
        return mean


def load_spec(path: str | os.PathLike, **overrides: Any) -> SweepSpec:
    """Read a sweep YAML with `yaml.safe_load` and check it (see `SweepSpec.from_dict`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), "the sweep spec must be a readable YAML file", exc.strerror) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), "must be valid YAML", str(exc).replace("\n", " ")) from None
    return SweepSpec.from_dict(data, source=str(path), **overrides)
