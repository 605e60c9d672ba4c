"""What an ensemble member is once deployed, and its one scoring on the test split.

A member is deployed in one of two forms (the spec's ``ensemble.refit``, among
`results.ensemble.FORMS`):

* ``bag`` (the default, as AutoGluon deploys its models): the member *is* the
  ``seeds x folds`` models its trial trained during cross-validation, their probabilities
  averaged. Each fit's weights were kept with the trial (``fold_models/``), so nothing is
  retrained, and the member's out-of-fold estimate (every train clip predicted by the
  models that did not train on it, averaged over the seeds) describes exactly this bag.
* ``full``: the member's config refit on the whole train split, once per CV seed, from the
  seed its CV fits of that seed started from (``init_seed``), for the median epoch count its inner early-stopping splits chose
  when it used early stopping; probabilities averaged over the seeds. Its out-of-fold
  estimate is then that of the bag, an approximation this form accepts.

Each member predicts the test split once (`deploy_and_predict`, a Ray task per member),
and `score_on_test` is the one place where those predictions meet the labels: each member
and each ensemble is scored there exactly once. For a segmented feature set (several clips per
group, e.g. 3 s segments of one track) the metrics are computed per clip and per group
(the group's clips' mean probability): the per-group figure is what ``predict`` answers.

Saved files (``<experiment>/ensemble/``) are never pickles (`trainables.training.saved`):
``<trial_id>_seed<s>_fold<k>.pt|.npz`` for a bag, ``<trial_id>_seed<s>.pt|.npz`` for a
full refit.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from features.sequences import SequenceSet
from features.store import FeatureStore
from results.ensemble import combine, per_group
from results.experiment import Member
from search.spec import SweepSpec
from seqsweep import storage
from seqsweep.errors import StoreError
from trainables.training.metrics import METRICS

__all__ = ["DeployedMember", "TestScores", "bag_member", "refit_member", "save_members", "load_members",
           "deploy_and_predict", "load_split", "score_test", "score_on_test"]


@dataclass
class DeployedMember:
    """One member as deployed: its models' probabilities are averaged.

    ``weights[i]`` is the torch ``state_dict`` or `PooledClassifier` trained with seed
    ``seeds[i]`` on CV fold ``folds[i]`` (bag) or on the whole train split (full: ``folds[i]``
    is ``None``).
    """

    trial_id: str
    model: str
    config: dict[str, Any]  # flat model + train config, without "model"
    form: str
    seeds: list[int]
    folds: list[int | None]
    weights: list[Any] = field(repr=False)
    epochs: int | None = None
    seconds: float = 0.0

    def predict_proba(self, data: SequenceSet) -> np.ndarray:
        """Mean probability over the member's models, float64 [shape=(N, C)]."""
        from trainables import predict_proba, split_flat_config

        name, model_config, _ = split_flat_config({"model": self.model, **self.config})
        return np.mean([predict_proba(name, model_config, w, data) for w in self.weights], axis=0)

    def file_names(self, suffixes: Sequence[str]) -> list[str]:
        return [f"{self.trial_id}_seed{s}" + ("" if k is None else f"_fold{k}") + suffix
                for s, k, suffix in zip(self.seeds, self.folds, suffixes)]


def bag_member(member: Member) -> DeployedMember:
    """The member's CV fold models, read from its trial's checkpoint (``fold_models/``)."""
    from trainables.training.saved import weights_from_bytes

    if not member.fits or any("file" not in f for f in member.fits):
        raise StoreError(member.checkpoint, "a bagged member needs its fold models (fits.json 'file' entries); "
                         "this trial ran before they were kept: use ensemble.refit: full", "no fold models")
    weights = []
    for f in member.fits:
        path = storage.join(member.checkpoint, f["file"])
        blob = storage.read_bytes(path)
        if blob is None:
            raise StoreError(path, "a bagged member's fold model must exist", "missing")
        weights.append(weights_from_bytes(os.path.splitext(path)[1], blob, model=member.model,
                                          flat_config=member.config, seed=_start(f), where=path))
    return DeployedMember(member.trial_id, member.model, dict(member.config), "bag",
                          [_start(f) for f in member.fits], [int(f["fold"]) for f in member.fits], weights)


def _start(fit: Mapping[str, Any]) -> int:
    """The seed one CV fit started from (``init_seed``; the plan seed for trials saved before)."""
    return int(fit.get("init_seed", fit["seed"]))


def refit_epochs(member: Member) -> int | None:
    """The epoch count a full refit trains for: the median ``best_epoch`` the trial's inner
    early-stopping splits chose (None when it did not use early stopping)."""
    from trainables import split_flat_config

    _, _, train_config = split_flat_config(member.flat_config)
    best = [int(f["best_epoch"]) for f in member.fits if f.get("best_epoch")]
    if train_config.early_stopping_patience is None or not best:
        return None
    return max(1, int(round(float(np.median(best)))))


def refit_member(member: Member, train: SequenceSet, *, seeds: Sequence[int] | None = None) -> DeployedMember:
    """Fit ``member``'s config on all of ``train`` once per seed (no validation, no early
    stopping: `refit_epochs` epochs when the trial stopped early). The seeds are the ones its
    CV fits started from (`Member.init_seeds`, one per CV seed) unless ``seeds`` says otherwise."""
    from trainables import fit, split_flat_config

    name, model_config, train_config = split_flat_config(member.flat_config)
    epochs = refit_epochs(member)
    if epochs is not None:
        train_config = replace(train_config, epochs=epochs, early_stopping_patience=None)
    weights, seconds = [], 0.0
    seeds = member.init_seeds if seeds is None else list(seeds)
    for seed in seeds:
        result = fit(name, model_config, train, None, seed=int(seed), train_config=train_config, return_weights=True)
        weights.append(result.weights)
        seconds += result.seconds
    return DeployedMember(member.trial_id, name, dict(member.config), "full", [int(s) for s in seeds],
                          [None] * len(seeds), weights, epochs=epochs, seconds=seconds)


def save_members(members: Sequence[DeployedMember], folder: str) -> list[dict[str, Any]]:
    """Write each member's weights into ``folder`` (a local path or URI; atomically, file by
    file); returns the entries `load_members` needs (for ``ensemble.json``)."""
    from trainables.training.saved import weights_to_bytes

    entries = []
    for m in members:
        blobs = [weights_to_bytes(w) for w in m.weights]
        files = m.file_names([suffix for suffix, _ in blobs])
        for name, (_, blob) in zip(files, blobs):
            storage.write_bytes_atomic(blob, storage.join(folder, name))
        entries.append({"trial_id": m.trial_id, "model": m.model, "config": m.config, "form": m.form,
                        "seeds": m.seeds, "folds": m.folds, "files": files, "epochs": m.epochs})
    return entries


def load_members(folder: str, entries: Sequence[Mapping[str, Any]]) -> list[DeployedMember]:
    """The members `save_members` wrote into ``folder``; nothing is unpickled."""
    from trainables.training.saved import weights_from_bytes

    out = []
    for e in entries:
        weights = []
        for name, seed in zip(e["files"], e["seeds"]):
            path = storage.join(folder, os.path.basename(name))  # never outside the folder
            blob = storage.read_bytes(path)
            if blob is None:
                raise StoreError(path, "a saved ensemble member's weights must exist "
                                 "(re-run `seqsweep results ensemble DIR`)", "missing")
            weights.append(weights_from_bytes(os.path.splitext(path)[1], blob, model=e["model"],
                                              flat_config=e["config"], seed=int(seed), where=path))
        folds = list(e.get("folds") or [None] * len(weights))
        out.append(DeployedMember(str(e["trial_id"]), e["model"], dict(e["config"]), e.get("form", "full"),
                                  list(e["seeds"]), folds, weights, epochs=e.get("epochs")))
    return out


def load_split(spec: SweepSpec, split: str) -> SequenceSet:
    """The sweep's ``train`` or ``test`` split straight from its store (never a sweep driver's
    copy), ragged: its frames are views of the store's buffers, padded one batch at a time
    when a model reads them (`trainables.training.padded`), so a split of any size is read once."""
    return FeatureStore(spec.store).load(spec.dataset, spec.feature_set, split=split)


def score_test(y: np.ndarray, proba: np.ndarray, *, n_classes: int, groups: np.ndarray | None = None
               ) -> dict[str, float]:
    """``test_<m>`` for each of `METRICS` on one set of test probabilities
    [shape=(N_test, C)], and with ``groups`` also ``test_group_<m>`` (per group: the mean
    probability of its clips); NaN when the test split is empty."""
    from trainables import classification_metrics

    keys = [f"test_{m}" for m in METRICS] + ([f"test_group_{m}" for m in METRICS] if groups is not None
                                                   else [])
    if len(y) == 0:
        return dict.fromkeys(keys, float("nan"))
    metrics = classification_metrics(y, proba, n_classes=n_classes)
    out = {f"test_{m}": float(metrics[m]) for m in METRICS}
    if groups is not None:
        group_y, group_proba = per_group(y, proba, groups)
        metrics = classification_metrics(group_y, group_proba, n_classes=n_classes)
        out.update({f"test_group_{m}": float(metrics[m]) for m in METRICS})
    return out


@dataclass
class TestScores:
    """What `score_on_test` gives back: probabilities [shape=(N_test, C)] and metrics per
    member (by trial id) and per ensemble (by method)."""

    __test__ = False  # not a pytest class

    y: np.ndarray
    clip_ids: np.ndarray
    member_proba: dict[str, np.ndarray]
    ensemble_proba: dict[str, np.ndarray]
    member_metrics: dict[str, dict[str, float]]
    ensemble_metrics: dict[str, dict[str, float]]


def deploy_and_predict(
    member: Member,
    *,
    form: str,
    test: SequenceSet,
    folder: str,
    train: SequenceSet | None = None,
) -> tuple[dict[str, Any], np.ndarray, float]:
    """Deploy one member (its bag, or a ``full`` refit on ``train`` with the seeds its CV fits
    started from), save its
    weights into ``folder`` and predict ``test`` with it: (its ``ensemble.json`` entry, its
    test probabilities float64 [shape=(N_test, C)], seconds). `finish_sweep` runs this as
    one Ray task per member, with the sweep's per-trial resources, so the work lands where
    the trials ran (on the GPU workers when trials asked for GPUs)."""
    import time

    started = time.perf_counter()
    if form == "bag":
        deployed = bag_member(member)
    else:
        if train is None:
            raise StoreError("train", "a full refit needs the train split", None)
        deployed = refit_member(member, train)
    proba = deployed.predict_proba(test) if len(test) else np.zeros((0, test.n_classes))
    entry = save_members([deployed], folder)[0]
    return entry, proba, time.perf_counter() - started


def score_on_test(
    member_proba: Mapping[str, np.ndarray],
    ensembles: Mapping[str, tuple[str, Sequence[str], Sequence[float]]],
    test: SequenceSet,
    *,
    by_group: bool = False,
) -> TestScores:
    """Score every deployed member's test probabilities (``member_proba``, by trial id, each
    predicted once by `deploy_and_predict`) and every ensemble once on the held-out ``test``.

    ``ensembles`` maps a candidate's name to ``(combiner, member trial ids, weights)``; the
    combiner (`results.ensemble.combine`) joins the members' probabilities. ``by_group`` adds
    the per-group metrics (segmented feature sets).
    """
    groups = np.asarray(test.groups, dtype=str) if by_group else None
    member_metrics = {tid: score_test(test.y, p, n_classes=test.n_classes, groups=groups)
                      for tid, p in member_proba.items()}
    ensemble_proba, ensemble_metrics = {}, {}
    for method, (combiner, ids, weights) in ensembles.items():
        proba = combine(combiner, np.stack([member_proba[t] for t in ids]), weights=weights)
        ensemble_proba[method] = proba
        ensemble_metrics[method] = score_test(test.y, proba, n_classes=test.n_classes, groups=groups)
    return TestScores(test.y, np.asarray(test.clip_ids, dtype=str), dict(member_proba), ensemble_proba,
                      member_metrics, ensemble_metrics)
