"""The ROCKET families through aeon: ``minirocket`` and ``multirocket_hydra``.

Two families, not one with a variant: their searchable fields differ (Hydra's kernels x
groups mean nothing to MiniRocket), so as two families each one's Optuna space holds only
its own parameters (TPE models each family's space apart), and the leaderboard's
``model`` column says which transform a row is without a second column to read.

One fit (one seed, one training fold), `RocketClassifier.fit`:

1. **Lengths.** aeon's MiniRocket and MultiRocket take equal-length series of at least 9
   steps. The fitted length is the training fold's longest sequence (at least 9, 10 for
   MultiRocket, which also convolves the first difference); with
   ``lengths: pad`` a shorter sequence repeats its last frame up to it, and a longer one
   (only ever met at prediction) is resampled to it; with ``lengths: stretch`` every
   sequence is linearly resampled to it. Each sequence is brought there on its own, so its
   features never depend on the batch it came in.
2. **Standardisation**, fitted on the training fold only: each channel z-scored over valid
   frames (`trainables.networks.fitted.feature_stats`, when ``TrainConfig.standardize``; MiniRocket
   sums channels, so a channel of large scale would otherwise drown the others), and every
   transform feature z-scored (Hydra's counts by the sparse scaling of Dempster et al.'s
   Hydra code, as aeon's ``MultiRocketHydraClassifier``).
3. **Transform**, aeon's `MiniRocket`, or `MultiRocket` beside `HydraTransformer`, with
   ``random_state`` = the fit's seed and ``n_jobs`` = the trial's CPUs
   (``TrainConfig.num_threads``).
4. **Head and probabilities.** ``ridge``: scikit-learn's `RidgeClassifierCV` (``alpha``, or
   the best of 10 by its efficient leave-one-out), whose decision values become
   probabilities by a softmax with one temperature, fitted (least log loss) on the
   *leave-one-out* decision values of the training fold's own rows: each is scored by a
   head that did not see it, so no inner split is spent and the validation fold is never
   looked at. ``logistic``: multinomial `LogisticRegression`, probabilities as they come.
   ``TrainConfig.class_weighted`` gives both heads scikit-learn's "balanced" weights.

**Saved with no pickle** (`to_arrays` / `load_arrays`, used by `trainables.training.saved`): the
fitted length, the standardisation, MiniRocket's / MultiRocket's fitted dilations, channel
picks and biases (data-dependent, so stored), the feature scalers and the head, as plain
arrays. Hydra's kernels depend only on the seed and the input's shape, so they are
re-derived by fitting a new `HydraTransformer` with the same seed. Prediction always reads
these arrays (never the scikit-learn objects), so a reloaded model predicts bit for bit
what the fitted one did.

**Token feature sets are refused** (`ConfigError` at fit, and at the sweep's door by
`search.space.with_token_defaults`): a convolution over chord ids means nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from features.sequences import SequenceSet
from seqsweep.errors import ConfigError, InputError
from trainables.classic._rocket_parts import (
    fit_head,
    fit_temperature,
    sparse_scale,
    sparse_scale_stats,
    to_length,
)
from trainables.configs import MiniRocketConfig, MultiRocketHydraConfig
from trainables.networks.fitted import feature_stats

__all__ = ["RocketClassifier", "build_minirocket", "build_multirocket_hydra", "MIN_LENGTH"]

#: The shortest series aeon's transforms take (kernel length 9; MultiRocket also convolves
#: the first difference, one step shorter).
MIN_LENGTH = {"minirocket": 9, "multirocket_hydra": 10}

_Config = MiniRocketConfig | MultiRocketHydraConfig


class RocketClassifier:
    """A ROCKET transform and a linear head, fitted on a `SequenceSet`.

    ``predict_proba`` returns float64 [shape=(N, n_classes)] (a zero column for a class the
    training fold lacked). ``n_params`` counts the fitted numbers it stores (biases,
    scalers, head).
    """

    def __init__(self, config: _Config, *, input_dim: int, n_classes: int, seed: int, n_jobs: int,
                 class_weighted: bool, standardize: bool) -> None:
        self.config = config
        self.kind = config.label
        self.input_dim, self.n_classes, self.seed = int(input_dim), int(n_classes), int(seed)
        self.n_jobs, self.class_weighted, self.standardize = int(n_jobs), bool(class_weighted), bool(standardize)
        self.n_params = 0
        self.state_: dict[str, np.ndarray] | None = None

    # ---- the series --------------------------------------------------------------------
    def _check(self, data: SequenceSet) -> None:
        if data.is_tokens:
            raise ConfigError(f"model {self.kind!r}", "ROCKET convolutions need real-valued frames; a token "
                              "feature set (ids) is refused: use lstm, cnn, wavenet (embedded ids) or knn, "
                              "random_forest (bags)", f"token feature set of {data.vocab_size} ids")
        if data.dim != self.input_dim:
            raise InputError("data", f"must have {self.input_dim} values per frame", data.dim)

    def _series(self, data: SequenceSet) -> np.ndarray:
        """Standardised series at the fitted length, float32 [shape=(N, D, length)]."""
        state = self.state_
        length, mean, std = int(state["length"]), state["mean"], state["std"]
        out = np.empty((len(data), data.dim, length), dtype=np.float32)
        for i, seq in enumerate(data.to_ragged().x):
            out[i] = to_length((seq - mean) / std, length, mode=self.config.lengths).T
        return out

    # ---- the transforms ----------------------------------------------------------------
    def _transformers(self, series: np.ndarray | None) -> list[Any]:
        """aeon's fitted transformers: fitted on ``series`` [shape=(N, D, T)], or restored
        from ``state_`` when it is None (the Hydra part re-derived from the seed)."""
        from aeon.transformations.collection.convolution_based import (
            HydraTransformer,
            MiniRocket,
            MultiRocket,
        )

        c, state = self.config, self.state_
        if self.kind == "minirocket":
            rocket = MiniRocket(n_kernels=c.n_features, max_dilations_per_kernel=c.max_dilations,
                                n_jobs=self.n_jobs, random_state=self.seed)
            attrs = {"parameters": "mini"}
        else:
            rocket = MultiRocket(n_kernels=c.n_kernels, max_dilations_per_kernel=c.max_dilations,
                                 n_jobs=self.n_jobs, random_state=self.seed)
            attrs = {"parameter": "multi", "parameter1": "multi1"}
        if series is not None:
            rocket.fit(series)
        else:  # aeon's fitted attributes, as its _fit sets them
            for attr, key in attrs.items():
                setattr(rocket, attr, tuple(state[f"{key}_{i}"] for i in range(int(state[f"{key}_n"]))))
            rocket._n_jobs, rocket.random_state_, rocket.is_fitted = self.n_jobs, self.seed, True
            if self.kind == "minirocket":
                rocket.n_kernels_ = max(84, c.n_features)
        if self.kind == "minirocket":
            return [rocket]
        import torch

        threads = torch.get_num_threads()  # HydraTransformer.fit sets the process's torch threads
        hydra = HydraTransformer(n_kernels=c.hydra_kernels, n_groups=c.hydra_groups, n_jobs=self.n_jobs,
                                 random_state=self.seed, output_type="numpy")
        shape = (1, self.input_dim, int(state["length"])) if series is None else (1, *series.shape[1:])
        hydra.fit(np.zeros(shape, dtype=np.float32))  # its kernels depend on the seed and shape only
        torch.set_num_threads(threads)
        return [rocket, hydra]

    def _features(self, series: np.ndarray) -> np.ndarray:
        """Scaled features float64 [shape=(N, F)]: the rocket block, then Hydra's."""
        state = self.state_
        rocket = self._fitted[0].transform(series)
        out = [(np.asarray(rocket, dtype=np.float64) - state["rocket_mean"]) / state["rocket_scale"]]
        if len(self._fitted) > 1:
            counts = np.asarray(self._fitted[1].transform(series), dtype=np.float64)
            out.append(sparse_scale(counts, state["hydra_mu"], state["hydra_sigma"]))
        return np.concatenate(out, axis=1)

    # ---- fit and predict -----------------------------------------------------------------
    def fit(self, data: SequenceSet) -> RocketClassifier:
        self._check(data)
        padded = data.to_padded()
        mean, std = feature_stats(padded.x, padded.lengths) if self.standardize else \
            (np.zeros(data.dim, np.float32), np.ones(data.dim, np.float32))
        self.state_ = {"length": np.array(max(MIN_LENGTH[self.kind], int(data.lengths.max()))), "mean": mean, "std": std}
        series = self._series(data)
        self._fitted = self._transformers(series)
        state = self.state_
        rocket = np.asarray(self._fitted[0].transform(series), dtype=np.float64)
        state["rocket_mean"] = rocket.mean(axis=0)
        scale = rocket.std(axis=0)
        state["rocket_scale"] = np.where(scale > 0, scale, 1.0)
        if self.kind == "minirocket":
            for i, array in enumerate(self._fitted[0].parameters):
                state[f"mini_{i}"] = array
            state["mini_n"] = np.array(len(self._fitted[0].parameters))
        else:
            for key, params in (("multi", self._fitted[0].parameter), ("multi1", self._fitted[0].parameter1)):
                for i, array in enumerate(params):
                    state[f"{key}_{i}"] = array
                state[f"{key}_n"] = np.array(len(params))
            counts = np.asarray(self._fitted[1].transform(series), dtype=np.float64)
            state["hydra_mu"], state["hydra_sigma"] = sparse_scale_stats(counts)
        features = self._features(series)
        head = fit_head(features, data.y, head=self.config.head, alpha=self.config.alpha,
                        class_weighted=self.class_weighted, n_jobs=self.n_jobs)
        state.update(coef=head.coef, intercept=head.intercept, classes=head.classes)
        state["temperature"] = np.array(fit_temperature(head.loo, data.y, head.classes)
                                        if head.loo is not None else 1.0)
        self.n_params = int(sum(v.size for k, v in state.items() if not k.endswith("_n") and k != "length"))
        return self

    def predict_proba(self, data: SequenceSet) -> np.ndarray:
        """Class probabilities float64 [shape=(N, n_classes)], rows summing to 1."""
        if self.state_ is None:
            raise InputError(f"{self.kind} model", "must be fitted (or loaded) before it predicts", "unfitted")
        self._check(data)
        out = np.zeros((len(data), self.n_classes))
        if not len(data):
            return out
        state = self.state_
        logits = (self._features(self._series(data)) @ state["coef"].T + state["intercept"]) / state["temperature"]
        logits -= logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        out[:, state["classes"]] = proba / proba.sum(axis=1, keepdims=True)
        return out

    # ---- no-pickle saving ----------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        """The fitted state as plain arrays (for ``np.savez``), with ``input_dim`` and ``n_classes``."""
        if self.state_ is None:
            raise InputError(f"{self.kind} model", "must be fitted before it is saved", "unfitted")
        return {**self.state_, "input_dim": np.array(self.input_dim), "n_classes": np.array(self.n_classes)}

    def load_arrays(self, arrays: Mapping[str, np.ndarray]) -> RocketClassifier:
        """Restore what `to_arrays` gave (the same config, seed and threads are the builder's)."""
        self.state_ = {k: np.asarray(v) for k, v in arrays.items() if k not in ("input_dim", "n_classes")}
        self._fitted = self._transformers(None)
        self.n_params = int(sum(v.size for k, v in self.state_.items() if not k.endswith("_n") and k != "length"))
        return self


def _build(config: _Config, *, input_dim: int, n_classes: int, vocab_size: int | None, seed: int,
           n_jobs: int | None, class_weighted: bool, standardize: bool) -> RocketClassifier:
    del vocab_size  # token data are refused at fit, where the data are seen
    return RocketClassifier(config, input_dim=input_dim, n_classes=n_classes, seed=seed, n_jobs=n_jobs or 1,
                            class_weighted=class_weighted, standardize=standardize)


def build_minirocket(config: MiniRocketConfig, *, input_dim: int, n_classes: int, vocab_size: int | None = None,
                     seed: int = 0, n_jobs: int | None = None, class_weighted: bool = True,
                     standardize: bool = True) -> RocketClassifier:
    """The registry's builder for ``minirocket`` (``n_jobs`` None: one thread)."""
    return _build(config, input_dim=input_dim, n_classes=n_classes, vocab_size=vocab_size, seed=seed,
                  n_jobs=n_jobs, class_weighted=class_weighted, standardize=standardize)


def build_multirocket_hydra(config: MultiRocketHydraConfig, *, input_dim: int, n_classes: int,
                            vocab_size: int | None = None, seed: int = 0, n_jobs: int | None = None,
                            class_weighted: bool = True, standardize: bool = True) -> RocketClassifier:
    """The registry's builder for ``multirocket_hydra`` (``n_jobs`` None: one thread)."""
    return _build(config, input_dim=input_dim, n_classes=n_classes, vocab_size=vocab_size, seed=seed,
                  n_jobs=n_jobs, class_weighted=class_weighted, standardize=standardize)
