"""The registry of ensemble methods (`results.ensemble.methods`) and the spec's ``ensemble``
section it checks (`results.ensemble.spec`), at the command line's door and when results
reads a sweep."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from results.build import make_candidates
from results.ensemble import (
    DEFAULT_METHODS,
    FIT_WEIGHTS_METHODS,
    METHODS,
    REGISTRY,
    combine,
    cross_fit,
)
from results.ensemble.aggregator import AGGREGATORS
from results.ensemble.methods import RANK_ONE, Method
from results.ensemble.selector import SELECTORS
from results.ensemble.spec import EnsembleSpec, ResultsSpec
from results.testing import random_probas
from search.spec import SweepSpec
from seqsweep.errors import ConfigError
from tests.search.test_sweep import BASE

#: what the door says of an unknown method in ``spec.yaml``
UNKNOWN = "spec.yaml: ensemble.methods[1]: must be one of ['soft', 'max', 'vote', 'weighted'] (got median)"


@pytest.mark.parametrize("method", [*REGISTRY.values(), RANK_ONE], ids=lambda m: m.name)
def test_every_registry_entry_builds(method: Method):
    """Each method's selector chooses weights on some rows and for deployment, and its
    aggregator (through `combine`, by the name ``ensemble.json`` saves) joins the chosen
    members into probabilities."""
    pool, y = random_probas(6, 40, 3, seed=11), np.arange(40) % 3
    selector = method.select(k=3, metric="balanced_accuracy", max_size=4)
    for weights in (selector.choose(pool[:, :30], y[:30]), selector.deploy(pool, y)):
        assert weights.shape == (6,) and (weights >= 0).all() and weights.sum() == pytest.approx(1.0)
        keep = weights > 0
        out = combine(method.combiner, pool[keep], weights=weights[keep])
        assert out.shape == (40, 3) and np.allclose(out.sum(axis=1), 1.0)
    parts = [(np.arange(20, 40), np.arange(20)), (np.arange(20), np.arange(20, 40))]
    assert np.isfinite(cross_fit(selector.choose, method.combiner, pool, y, parts)).all()


def test_the_registry_names_each_method_once():
    assert METHODS == ("soft", "max", "vote", "weighted", "weighted_logloss")
    assert DEFAULT_METHODS == ("soft", "max", "vote", "weighted") and FIT_WEIGHTS_METHODS == ("weighted_logloss",)
    assert {m.selector for m in REGISTRY.values()} | {RANK_ONE.selector} == set(SELECTORS)
    assert {m.aggregator for m in REGISTRY.values()} == set(AGGREGATORS)
    assert [m.name for m in REGISTRY.values() if m.weighted] == ["weighted", "weighted_logloss"]
    assert RANK_ONE.combiner == "soft"  # best_member is soft over one member
    with pytest.raises(ConfigError, match=r"method 'x': selector: must be one of \['rank_one'"):
        Method("x", "top_3", "mean", "")
    with pytest.raises(ConfigError, match=r"methods: must be among \['soft', .*\] \(got median\)"):
        make_candidates(random_probas(3, 10, 2), np.arange(10) % 2, ["soft", "median"], top_k=2,
                        metric="accuracy")
    built = make_candidates(random_probas(3, 10, 2), np.arange(10) % 2, ["vote"], top_k=2, metric="accuracy",
                            fit_weights=True)
    assert [(c.name, c.combiner) for c in built] == [("best_member", "soft"), ("vote", "vote"),
                                                     ("weighted_logloss", "weighted_logloss")]


def test_an_unknown_method_is_refused_at_the_door(tmp_path, monkeypatch):
    """``seqsweep sweep run`` reads the spec through results: a bad ``ensemble`` stops it
    before any trial, naming the file, the field, the rule and the value."""
    import search.sweep
    from seqsweep.cli import main

    def no_sweep(*args, **kwargs):
        raise AssertionError("the sweep must not start")

    monkeypatch.setattr(search.sweep, "run_sweep", no_sweep)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump({**BASE, "ensemble": {"methods": ["soft", "median"]}}))
    res = CliRunner().invoke(main, ["sweep", "run", "spec.yaml"])
    assert res.exit_code == 1 and f"Error: {UNKNOWN}" in res.output, res.output
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump({**BASE, "ensemble": {"refit": "half", "top_k": 0}}))
    res = CliRunner().invoke(main, ["sweep", "run", "spec.yaml"])
    assert res.exit_code == 1 and "spec.yaml: ensemble.top_k: Input should be greater than or equal to 1 (got 0)" in res.output, res.output


def test_the_ensemble_section_is_checked_with_the_others():
    """One validation: a broken ``ensemble`` and a broken ``name`` are both reported, one per line."""
    with pytest.raises(ConfigError) as caught:
        ResultsSpec.from_dict({**BASE, "name": "", "ensemble": {"methods": "soft, median"}}, source="spec.yaml")
    lines = str(caught.value).splitlines()
    assert UNKNOWN in lines and any(line.startswith("spec.yaml: name: ") for line in lines), lines
    with pytest.raises(ConfigError, match=r"spec.yaml: ensemble: must be a mapping of keys to values \(got 3\)"):
        SweepSpec.from_dict({**BASE, "ensemble": 3}, source="spec.yaml")
    with pytest.raises(ConfigError, match=r"spec.yaml: ensemble.size: is not a known key; allowed: \['top_k'"):
        ResultsSpec.from_dict({**BASE, "ensemble": {"size": 3}}, source="spec.yaml")
    assert SweepSpec.from_dict(BASE).ensemble == {} and ResultsSpec.from_dict(BASE).ensemble == EnsembleSpec()


def test_results_checks_the_section_it_reads_and_saves_it_whole(tmp_path):
    spec = ResultsSpec.from_dict({**BASE, "storage": str(tmp_path), "ensemble": {"methods": "soft,vote"}},
                                 source="spec.yaml")
    saved = json.loads(Path(spec.save()).read_text())
    assert saved["ensemble"] == {"top_k": 5, "methods": ["soft", "vote"], "refit": "bag", "fit_weights": False,
                                 "max_size": 25}
    assert list(saved) == [*SweepSpec.model_fields, "source"]  # the layout the search room's spec saves
    assert ResultsSpec.load(spec.experiment_path).ensemble.methods == ("soft", "vote")
    saved["ensemble"]["refit"] = "half"
    (tmp_path / "t" / "sweep.json").write_text(json.dumps(saved))
    assert SweepSpec.load(spec.experiment_path).ensemble["refit"] == "half"  # the search room does not read it
    with pytest.raises(ConfigError, match=r"sweep.json: ensemble.refit: must be one of \['bag', 'full'\] \(got half\)"):
        ResultsSpec.load(spec.experiment_path)
