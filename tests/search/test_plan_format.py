"""plan.json carries a format version: a sweep saved before trainables was regrouped
(issue 25) is refused on --resume with the reason, and a current one is accepted."""

from __future__ import annotations

import json

import pytest

from search.spec import SweepSpec
from search.sweep import PLAN_FORMAT, _check_plan
from seqsweep.errors import ConfigError

FINGERPRINT = {"source": "store/synth/mfcc27", "train_clips": 12, "train_hash": "0123456789abcdef",
               "folds": 2, "seeds": 1, "base_seed": 0}


def _spec(tmp_path) -> SweepSpec:
    return SweepSpec.from_dict({"name": "old", "store": str(tmp_path / "store"), "dataset": "synth",
                                "feature_set": "mfcc27", "storage": str(tmp_path / "runs"),
                                "models": {"knn": {"n_neighbors": 1}}})


def test_a_new_sweep_writes_the_format_and_resumes(tmp_path):
    spec = _spec(tmp_path)
    _check_plan(spec, FINGERPRINT, resume=False)
    saved = json.loads((tmp_path / "runs" / "old" / "plan.json").read_text())
    assert saved == {"format": PLAN_FORMAT, **FINGERPRINT}
    _check_plan(spec, FINGERPRINT, resume=True)  # the same format and folds: accepted


@pytest.mark.parametrize("saved", [FINGERPRINT, {"format": PLAN_FORMAT - 1, **FINGERPRINT}])
def test_a_sweep_saved_before_the_regroup_is_refused_with_the_reason(tmp_path, saved):
    spec = _spec(tmp_path)
    (tmp_path / "runs" / "old").mkdir(parents=True)
    (tmp_path / "runs" / "old" / "plan.json").write_text(json.dumps(saved))
    with pytest.raises(ConfigError, match=r"saved before trainables was regrouped \(issue 25\).*modules that "
                       r"moved.*start a new sweep.*seqsweep results.*\(got plan.json format"):
        _check_plan(spec, FINGERPRINT, resume=True)
