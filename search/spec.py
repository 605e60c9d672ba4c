"""The sweep spec: one YAML file, read once with a safe loader into frozen, typed config.

A spec names the data (``store``, ``dataset``, ``feature_set``), how a trial is scored
(``metric``, ``objective``, ``cv``), how configurations are chosen (``search``), which
model families are searched and over what ranges (``models``), what each trial gets
(``train``, ``resources``), where results go (``storage``) and how ensembles are built
(``ensemble``). Each section is a frozen pydantic model whose fields state its rules;
every error is a `ConfigError` naming the file, the key, the rule and the value found.

A hyperparameter under ``models.<family>`` is written one of three ways::

    dropout: 0.2                             # fixed
    batch_size: [16, 32, 64]                 # a choice among values
    lr: {low: 1.0e-4, high: 1.0e-2, log: true}   # a range (int if both ends are ints)

For the per-layer fields (the LSTM's ``units``, the CNNs' ``filters``) the range is
sampled once per layer, each layer its own parameter (``units_0``, ``units_1``, ...),
with the layer count (``num_layers`` / ``num_blocks``) a parameter of its own.

The spec saves itself beside the results (`SweepSpec.save`, ``sweep.json``, in the YAML's
own layout) and `SweepSpec.load` reads it back.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from search.checks import (
    Flag,
    Float,
    Int,
    Number,
    Section,
    as_number,
    broken,
    config_error,
    one_of,
    prefix_of,
)
from seqsweep import storage
from seqsweep.errors import ConfigError, StoreError
from seqsweep.layout import SPEC_FILE
from trainables.configs import MODEL_CONFIGS, TrainConfig
from trainables.metrics import METRICS

__all__ = [
    "Param",
    "ModelSpace",
    "ObjectiveSpec",
    "CVSpec",
    "SearchSpec",
    "TrainSpec",
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
#: the top-level keys a command line may override (and ``num_samples``, in ``search``)
OVERRIDABLE = ("name", "store", "dataset", "feature_set", "storage")


#: of several broken sections, the one reported: the sections, then the top-level values
_REPORT_ORDER = ("objective", "cv", "search", "models", "train", "resources", "ensemble",
                 "name", "store", "dataset", "feature_set", "metric", "storage")



# ---- hyperparameter ranges ------------------------------------------------------------------
class Range(Section):
    """``{low, high, log, step}``: an int range if both ends are ints, else a float range."""

    low: Number
    high: Number
    log: Flag = False
    step: Any = None  # >= 0, of the range's kind: checked with the ends

    @property
    def kind(self) -> type:
        return int if all(isinstance(v, int) for v in (self.low, self.high)) else float

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        low, high = self.kind(self.low), self.kind(self.high)
        if not low < high:
            raise broken("a range needs low < high", f"low={low}, high={high}")
        if self.log and low <= 0:
            raise broken("must be > 0 on a log scale", low, at="low")
        if self.step is not None:
            try:
                step = as_number(self.step, self.kind)
            except PydanticCustomError as exc:
                raise broken(exc.context["rule"], exc.context["value"], at="step") from None
            if step < 0:
                raise broken("must be >= 0", step, at="step")
            if self.log:
                raise broken("cannot be combined with log: true", step, at="step")
        return self


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
            try:
                r = Range.model_validate(raw)
            except ValidationError as exc:
                raise config_error(exc, base=where) from None
            kind = r.kind
            return cls(kind.__name__, low=kind(r.low), high=kind(r.high), log=r.log,
                       step=None if r.step is None else kind(r.step))
        return cls("fixed", value=raw)

    def raw(self) -> Any:
        """The YAML form `parse` reads."""
        if self.kind == "fixed":
            return self.value
        if self.kind == "choice":
            return list(self.choices)
        return {"low": self.low, "high": self.high, "log": self.log,
                **({} if self.step is None else {"step": self.step})}

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
    """One model family's search space: its parameters, and per-layer ranges. The keys a
    family takes are its config's (`trainables.configs.MODEL_CONFIGS`) and `TrainConfig`'s."""

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

    def raw(self) -> dict[str, Any]:
        """The YAML form `parse` reads."""
        return {**{k: p.raw() for k, p in self.params.items()},
                **{seq: p.raw() for seq, (_, p) in self.per_layer.items()}}

    def all_params(self) -> list[tuple[str, Param]]:
        """Every (key, Param): the flat ones, then the per-layer ones."""
        return [*self.params.items(), *((seq, p) for seq, (_, p) in self.per_layer.items())]


def _model_spaces(raw: Any, info: ValidationInfo) -> tuple[ModelSpace, ...]:
    if isinstance(raw, tuple) and all(isinstance(m, ModelSpace) for m in raw):
        return raw
    where = f"{prefix_of(info)}models"
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(where, f"must map one or more model families ({list(MODEL_CONFIGS)}) "
                                 "to their search ranges", raw)
    return tuple(ModelSpace.parse(f"{where}.{n}", n, r) for n, r in raw.items())


Models = Annotated[tuple[ModelSpace, ...], PlainValidator(_model_spaces),
                   PlainSerializer(lambda models: {m.name: m.raw() for m in models})]


# ---- the other sections ---------------------------------------------------------------------
class ObjectiveSpec(Section):
    """``objective``: what a trial maximises over its (seed, fold) scores: their ``mean``, or
    ``mean_minus_std`` (``{type: mean_minus_std, std_weight: w}``: mean - w * std)."""

    type: Literal[OBJECTIVES]
    std_weight: Float = Field(1.0, ge=0)


class CVSpec(Section):
    """``folds`` stratified, group-aware folds of the train split, repeated for ``seeds`` seeds."""

    folds: Int = Field(5, ge=2)
    seeds: Int = Field(3, ge=1)

    @property
    def fits(self) -> int:
        return self.folds * self.seeds


class SearchSpec(Section):
    num_samples: Int = Field(20, ge=1)
    max_concurrent: Int | None = Field(None, ge=1)
    sampler: one_of(SAMPLERS) = "tpe"
    seed: Int = Field(0, ge=0)
    scheduler: one_of(SCHEDULERS) = "none"
    #: asha / wilcoxon: fits a trial always gets (default: one seed's folds); <= cv's fits
    grace_fits: Int | None = Field(None, ge=1)
    #: wilcoxon: stop when the paired one-sided p-value is below this
    wilcoxon_p: Float = Field(0.1, ge=0, le=1)


class TrainSpec(Section):
    """``train``: fixed training settings for every trial (any `TrainConfig` key, checked
    by `TrainConfig.from_flat`), and ``fused``: train a trial's seeds x folds fits as one
    fused model (``auto``, ``true`` or ``false``)."""

    model_config = ConfigDict(extra="allow")

    fused: one_of(FUSED, "must be auto, true or false") = "auto"

    @classmethod
    def known_keys(cls) -> list[str]:
        return [*TrainConfig.flat_key_names(), "fused"]

    @model_validator(mode="after")
    def _a_train_config(self) -> TrainSpec:
        TrainConfig.from_flat(self.fixed)  # raises its own ConfigError
        return self

    @property
    def fixed(self) -> dict[str, Any]:
        """The `TrainConfig` keys (everything but ``fused``)."""
        return dict(self.model_extra or {})


class ResourceSpec(Section):
    cpus: Float = Field(1.0, ge=0.01)
    gpus: Float = Field(0.0, ge=0)

    @field_validator("gpus")
    @classmethod
    def _whole_gpus_above_one(cls, gpus: float) -> float:
        if gpus > 1 and not float(gpus).is_integer():
            raise broken("above 1 must be a whole number of GPUs", gpus)
        return gpus


class EnsembleSpec(Section):
    top_k: Int = Field(5, ge=1)
    methods: tuple[one_of(ENSEMBLE_METHODS), ...] = ENSEMBLE_METHODS  # or "soft,max"
    refit: one_of(REFITS) = "bag"  # bag: deploy each member's CV fold models; full: refit on all train rows
    fit_weights: Annotated[bool, PlainValidator(bool)] = False

    @field_validator("methods", mode="before")
    @classmethod
    def _comma_separated(cls, methods: Any) -> Any:
        return [m.strip() for m in methods.split(",")] if isinstance(methods, str) else methods


# ---- the whole sweep ------------------------------------------------------------------------
class SweepSpec(Section):
    """A whole sweep, checked. Build it with `load_spec` (or `SweepSpec.from_dict`); its fields
    are the YAML's top-level keys."""

    name: str = Field(None, validate_default=True)
    store: str = Field(None, validate_default=True)
    dataset: str = Field(None, validate_default=True)
    feature_set: str = Field(None, validate_default=True)
    metric: one_of(METRICS) = "balanced_accuracy"
    objective: ObjectiveSpec = ObjectiveSpec(type="mean")
    cv: CVSpec = CVSpec()
    search: SearchSpec = SearchSpec()
    models: Models = Field(None, validate_default=True)
    train: TrainSpec = TrainSpec()
    resources: ResourceSpec = ResourceSpec()
    storage: str = "runs"
    ensemble: EnsembleSpec = EnsembleSpec()
    _source: str = PrivateAttr("<dict>")

    @field_validator("name", "store", "dataset", "feature_set", "storage", mode="before")
    @classmethod
    def _text(cls, value: Any, info: ValidationInfo) -> str:
        if value in (None, "") or not isinstance(value, (str, int, float)):
            key = info.field_name
            raise broken("is required: a non-empty string" + (
                f" (or --{key.replace('_', '-')} on the command line)" if key != "name" else ""), value)
        return str(value)

    @field_validator("objective", mode="before")
    @classmethod
    def _objective_form(cls, value: Any) -> Any:
        """``objective: mean`` is ``{type: mean}``; a bad type is named as ``objective``."""
        form = value if isinstance(value, (dict, BaseModel)) else {"type": value}
        if isinstance(form, dict) and "type" in form and form["type"] not in OBJECTIVES:
            raise broken(f"must be one of {list(OBJECTIVES)}", form["type"])
        return form

    @model_validator(mode="after")
    def _across_sections(self, info: ValidationInfo) -> SweepSpec:
        if self.search.grace_fits is not None and self.search.grace_fits > self.cv.fits:
            raise ConfigError(f"{prefix_of(info)}search.grace_fits", f"must be <= {self.cv.fits}",
                              self.search.grace_fits)
        if self.search.sampler == "grid":  # every range must be enumerable
            for space in self.models:
                for key, param in space.all_params():
                    param.grid_values(f"models.{space.name}.{key}")
        return self

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<dict>", **overrides: Any) -> SweepSpec:
        """Check a parsed YAML mapping; ``overrides`` (None values ignored) replace top-level
        ``name``, ``store``, ``dataset``, ``feature_set``, ``storage`` and ``num_samples``."""
        overrides = {k: v for k, v in overrides.items() if v is not None}
        num_samples = overrides.pop("num_samples", None)
        for key, value in overrides.items():
            if key not in OVERRIDABLE:
                raise ConfigError(f"override {key!r}", "is not overridable", value)
        if isinstance(data, dict):
            data = {**data, **overrides}
            if num_samples and isinstance(data.get("search") or {}, dict):
                data["search"] = {**(data.get("search") or {}), "num_samples": num_samples}
        try:
            spec = cls.model_validate(data, context={"source": source})
        except ValidationError as exc:
            raise config_error(exc, pre=f"{source}: " if source else "", order=_REPORT_ORDER) from None
        spec._source = source
        return spec

    def with_overrides(self, **overrides: Any) -> SweepSpec:
        overrides = {k: v for k, v in overrides.items() if v is not None}
        if "num_samples" in overrides:
            overrides["search"] = self.search.model_copy(update={"num_samples": int(overrides.pop("num_samples"))})
        return self.model_copy(update=overrides)

    # ---- saved beside the results -------------------------------------------------------
    def save(self, experiment_dir: str | os.PathLike | None = None) -> str:
        """Write the spec as run to ``<experiment_dir>/sweep.json`` (default: its own experiment
        folder; a local path or a URI), store and storage made absolute; returns the path."""
        folder = storage.resolve(self.experiment_path if experiment_dir is None else experiment_dir)
        data = {**self.model_dump(mode="json"), "store": storage.resolve(self.store),
                "storage": self.storage_path, "source": self.source}
        path = storage.join(folder, SPEC_FILE)
        storage.write_bytes_atomic(json.dumps(data, indent=2).encode(), path)
        return path

    @classmethod
    def load(cls, experiment_dir: str | os.PathLike) -> SweepSpec:
        """The spec `save` wrote into the experiment folder (a local path or a URI). A
        ``sweep.json`` written before the spec saved itself loads too, each model family
        with no ranges (that file kept only their names). Raises `StoreError` when the file
        is missing or not JSON, `ConfigError` (naming the file) when it does not check."""
        folder = storage.resolve(experiment_dir)
        path = storage.join(folder, SPEC_FILE)
        try:
            raw = storage.read_bytes(path)
            data = None if raw is None else json.loads(raw)
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(path, "must be the sweep's readable JSON spec", str(exc)) from None
        if raw is None:
            raise StoreError(path, "a sweep's experiment folder must hold this file",
                             "missing (is this <storage>/<name> of a sweep that ran?)")
        source = data.pop("source", path) if isinstance(data, dict) else path
        if isinstance(data, dict) and isinstance(data.get("models"), list):
            data = _before_save(data, storage=folder.rsplit("/", 1)[0])
        spec = cls.from_dict(data, source=path)
        spec._source = str(source)
        return spec

    # ---- derived ------------------------------------------------------------------------
    @property
    def source(self) -> str:
        """Where the spec came from (the YAML file's path)."""
        return self._source

    @property
    def fused(self) -> str | bool:
        return self.train.fused

    @property
    def storage_path(self) -> str:
        """Ray Tune's storage: a URI as given, a local path made absolute."""
        return self.storage if "://" in self.storage else os.path.abspath(self.storage)

    @property
    def experiment_path(self) -> str:
        return f"{self.storage_path.rstrip('/')}/{self.name}"


def _before_save(data: dict[str, Any], *, storage: str) -> dict[str, Any]:
    """A ``sweep.json`` of the layout written before `SweepSpec.save` (``objective`` and
    ``std_weight``, ``fused`` at the top, ``models`` only names, no ``storage``) in the YAML's."""
    data = dict(data)
    data["models"] = {name: {} for name in data["models"]}
    data["objective"] = {"type": data.pop("objective", "mean"), "std_weight": data.pop("std_weight", 1.0)}
    data["train"] = {**(data.get("train") or {}), "fused": data.pop("fused", "auto")}
    data.setdefault("storage", storage)
    return data


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
