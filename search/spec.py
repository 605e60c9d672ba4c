"""The sweep spec: one YAML file, read once with a safe loader into frozen, typed config.

A spec names the data (``store``, ``dataset``, ``feature_set``), how a trial is scored
(``metric``, ``objective``, ``cv``), how configurations are chosen (``search``), which
model families are searched and over what ranges (``models``), what each trial gets
(``train``, ``resources``), where results go (``storage``) and how ensembles are built
(``ensemble``). Each section is a frozen pydantic model whose fields state its rules;
every error is a `ConfigError` naming the file, the key, the rule and the value found.
How a model family's ranges are written (``models``) is `search.ranges`' part. This room
never reads ``ensemble`` and keeps it as the mapping written: the results room checks it
(`results.ensemble.spec.ResultsSpec`, this spec with that section typed; the command line
reads a sweep's YAML as one, before any trial).

The spec saves itself beside the results (`SweepSpec.save`, ``sweep.json``, in the YAML's
own layout) and `SweepSpec.load` reads it back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from search.ranges import Models
from search.section import Section
from seqsweep import storage
from seqsweep.errors import ConfigError, StoreError
from seqsweep.layout import SPEC_FILE
from seqsweep.validation import PlainFloat, PlainInt, broken, config_error, one_of
from trainables.configs import TrainConfig
from trainables.training.metrics import METRICS

__all__ = [
    "ObjectiveSpec",
    "CVSpec",
    "SearchSpec",
    "TrainSpec",
    "ResourceSpec",
    "DataSpec",
    "SweepSpec",
    "load_spec",
    "METRICS",
    "SAMPLERS",
]

SAMPLERS = ("tpe", "random", "cmaes", "grid")
SCHEDULERS = ("none", "asha", "wilcoxon")
#: the fewest paired fits the wilcoxon scheduler looks at (`search.wilcoxon`): a one-sided
#: signed-rank test on 3 pairs cannot reach p below 1/8
WILCOXON_MIN_FITS = 4
FUSED = ("auto", True, False)
OBJECTIVES = ("mean", "mean_minus_std")
DATA_PATHS = ("auto", "object_store", "node_cache")
#: the top-level keys a command line may override (and ``num_samples``, in ``search``)
OVERRIDABLE = ("name", "store", "dataset", "feature_set", "storage")


# ---- the sections -----------------------------------------------------------------------------
class ObjectiveSpec(Section):
    """``objective``: what a trial maximises over its (seed, fold) scores: their ``mean``, or
    ``mean_minus_std`` (``{type: mean_minus_std, std_weight: w}``: mean - w * std)."""

    type: Literal[OBJECTIVES]
    std_weight: PlainFloat = Field(1.0, ge=0)


class CVSpec(Section):
    """``folds`` stratified, group-aware folds of the train split, repeated for ``seeds`` seeds."""

    folds: PlainInt = Field(5, ge=2)
    seeds: PlainInt = Field(3, ge=1)

    @property
    def fits(self) -> int:
        return self.folds * self.seeds


class SearchSpec(Section):
    num_samples: PlainInt = Field(20, ge=1)
    max_concurrent: PlainInt | None = Field(None, ge=1)
    sampler: one_of(SAMPLERS) = "tpe"
    seed: PlainInt = Field(0, ge=0)
    scheduler: one_of(SCHEDULERS) = "none"
    #: asha / wilcoxon: fits a trial always gets (default: one seed's folds); <= cv's fits
    grace_fits: PlainInt | None = Field(None, ge=1)
    #: wilcoxon: the false-stop rate, spent over a trial's looks and the finished trials
    wilcoxon_p: PlainFloat = Field(0.1, ge=0, le=1)

    def grace(self, folds: int) -> int:
        """The fits every trial gets before a scheduler may stop it: ``grace_fits``, by
        default one seed's ``folds`` (for wilcoxon at least `WILCOXON_MIN_FITS`)."""
        if self.grace_fits is not None:
            return self.grace_fits
        return max(folds, WILCOXON_MIN_FITS) if self.scheduler == "wilcoxon" else folds


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
        try:
            TrainConfig.from_flat(self.fixed)
        except ConfigError as exc:  # named ``train.<key>``: here, the keys below this section
            below = [broken(e.rule, e.value, at=e.where.removeprefix(f"{TrainConfig.label}.")) for e in (exc, *exc.more)]
            raise ConfigError(below[0].where, below[0].rule, below[0].value, more=below[1:]) from None
        return self

    @property
    def fixed(self) -> dict[str, Any]:
        """The `TrainConfig` keys (everything but ``fused``)."""
        return dict(self.model_extra or {})


class ResourceSpec(Section):
    cpus: PlainFloat = Field(1.0, ge=0.01)
    gpus: PlainFloat = Field(0.0, ge=0)

    @field_validator("gpus")
    @classmethod
    def _whole_gpus_above_one(cls, gpus: float) -> float:
        if gpus > 1 and not float(gpus).is_integer():
            raise broken("above 1 must be a whole number of GPUs", gpus)
        return gpus


def _a_mapping(value: Any) -> Any:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise broken("must be a mapping of keys to values", value)
    return value


#: ``ensemble``: checked by the results room (`results.ensemble.spec.EnsembleSpec`); here
#: only a mapping (an absent or empty one is ``{}``), kept as written
Unchecked = Annotated[dict[str, Any], BeforeValidator(_a_mapping)]


class DataSpec(Section):
    """``data``: how the trials get the train split. ``object_store``: the driver loads it
    padded and hands it over through Ray's object store (refused when it does not fit);
    ``node_cache``: the driver reads only labels, groups and lengths, and the first trial on
    each node copies the rows from the store into one memory-mapped file there
    (`features.store.node_cache`); ``auto``: the object store while the padded split takes
    at most `search.sweep.AUTO_SHARE` of the smallest node's object store, else the node cache."""

    path: one_of(DATA_PATHS) = "auto"


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
    data: DataSpec = DataSpec()
    storage: str = "runs"
    ensemble: Unchecked = Field(default_factory=dict)
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
    def _across_sections(self) -> SweepSpec:
        if self.search.grace_fits is not None and self.search.grace_fits > self.cv.fits:
            raise ConfigError("search.grace_fits", f"must be <= {self.cv.fits}",
                              self.search.grace_fits)
        if self.search.scheduler == "wilcoxon":
            if self.search.grace_fits is not None and self.search.grace_fits < WILCOXON_MIN_FITS:
                raise ConfigError("search.grace_fits", f"must be >= {WILCOXON_MIN_FITS} with "
                                  "scheduler wilcoxon (fewer paired fits cannot show a difference)",
                                  self.search.grace_fits)
            first = self.search.grace(self.cv.folds)
            if first >= self.cv.fits:
                raise ConfigError("search.scheduler", f"wilcoxon looks first after {first} fits "
                                  f"and never after a trial's last, so cv.folds x cv.seeds must be > {first}",
                                  f"{self.cv.fits} fits")
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
            spec = cls.model_validate(data)
        except ValidationError as exc:
            raise config_error(exc, model=cls, source=source) from None
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


def load_spec(path: str | os.PathLike, *, spec_type: type[SweepSpec] = SweepSpec, **overrides: Any) -> SweepSpec:
    """Read a sweep YAML with `yaml.safe_load` and check it as a ``spec_type`` (see
    `SweepSpec.from_dict`; `results.ensemble.spec.ResultsSpec` checks ``ensemble`` too)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), "the sweep spec must be a readable YAML file", exc.strerror) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), "must be valid YAML", str(exc).replace("\n", " ")) from None
    return spec_type.from_dict(data, source=str(path), **overrides)
