"""One formatter (`seqsweep.validation.config_error`) turns pydantic's errors into `ConfigError`:
each names the setting as the user wrote it, the rule and the value."""

from __future__ import annotations

import pickle
from typing import Annotated, Literal

import pytest
import yaml
from pydantic import BaseModel, Field, ValidationError

from search.spec import load_spec
from seqsweep.errors import ConfigError
from seqsweep.validation import PlainInt, broken, config_error
from tests.search.test_sweep import BASE
from trainables.configs import LSTMConfig, TrainConfig


class _Inner(BaseModel):
    units: tuple[Annotated[int, Field(ge=1)], ...] = (8,)
    mode: Literal["bag", "full"] = "bag"


class _Outer(BaseModel):
    inner: dict[str, _Inner] = {}
    size: int | Literal["auto"] = "auto"
    clip: float | None = Field(None, gt=0, description="must be > 0 (or None to turn clipping off)")
    count: PlainInt = 1


def _error(data: dict, **kwargs) -> ConfigError:
    with pytest.raises(ValidationError) as info:
        _Outer.model_validate(data)
    return config_error(info.value, model=_Outer, **kwargs)


def test_a_nested_field_with_a_list_index_names_the_setting_rule_and_value():
    error = _error({"inner": {"lstm": {"units": [8, 0]}}})
    assert (error.where, error.value) == ("inner.lstm.units[1]", 0)
    assert error.rule == "Input should be greater than or equal to 1"
    assert str(error) == "inner.lstm.units[1]: Input should be greater than or equal to 1 (got 0)"


def test_an_enum_and_a_union_read_as_one_rule_each():
    error = _error({"inner": {"a": {"mode": "half"}}, "size": "big"}, source="spec.yaml")
    assert (error.where, error.rule, error.value) == ("spec.yaml: inner.a.mode", "Input should be 'bag' or 'full'",
                                                      "half")
    (union,) = error.more  # the union's two members are one setting, without pydantic's member tags
    assert union.where == "spec.yaml: size" and union.value == "big"
    assert union.rule == ("Input should be a valid integer, unable to parse string as an integer or "
                          "Input should be 'auto'")


def test_a_declared_rule_a_validator_rule_and_a_prefix():
    error = _error({"clip": -1.0, "count": 2.5}, prefix="train")
    assert (error.where, error.rule, error.value) == ("train.clip", "must be > 0 (or None to turn clipping off)", -1.0)
    assert [(e.where, e.rule, e.value) for e in error.more] == [("train.count", "must be an integer", 2.5)]
    message = str(error)
    assert message.splitlines() == ["train.clip: must be > 0 (or None to turn clipping off) (got -1.0)",
                                    "train.count: must be an integer (got 2.5)"]


def test_the_error_pickles_with_every_setting():
    error = ConfigError("a", "must be b", 1, more=[broken("must be d", 2, at="c")])
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error) and again.more[0].where == "c"


def test_typed_configs_name_the_field_and_the_value():
    with pytest.raises(ConfigError) as info:
        LSTMConfig(units=(8, 0), dropout=1.5)
    assert [(e.where, e.value) for e in (info.value, *info.value.more)] == [("lstm.units[1]", 0), ("lstm.dropout", 1.5)]
    with pytest.raises(ConfigError, match=r"train.device: must be 'auto', 'cpu', 'cuda' or 'cuda:N' \(got tpu\)"):
        TrainConfig(device="tpu")


def test_a_spec_with_two_mistakes_names_both(tmp_path):
    spec = {**BASE, "cv": {"folds": 1, "seeds": 1}, "search": {"num_samples": 4, "sampler": "bayes"}}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(ConfigError) as info:
        load_spec(path)
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert lines[0] == f"{path}: cv.folds: Input should be greater than or equal to 2 (got 1)"
    assert lines[1].startswith(f"{path}: search.sampler: must be one of ['tpe'") and lines[1].endswith("(got bayes)")


def test_a_python_callers_ensemble_overrides_are_checked_by_the_spec_fields():
    from results.ensemble.spec import EnsembleSpec
    from results.pipeline import _ensemble_settings

    conf = EnsembleSpec()
    assert _ensemble_settings(conf, top_k=None, refit=None) is conf
    assert _ensemble_settings(conf, top_k=2, refit="full").refit == "full"
    with pytest.raises(ConfigError) as info:
        _ensemble_settings(conf, top_k=0, refit="half")
    assert [(e.where, e.value) for e in (info.value, *info.value.more)] == [("top_k", 0), ("refit", "half")]
    assert "greater than or equal to 1" in info.value.rule and "must be one of ['bag', 'full']" in info.value.more[0].rule
