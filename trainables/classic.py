"""Classic baselines (scikit-learn) on per-clip pooled features: ``knn``, ``random_forest``.

Each clip becomes one vector: the mean and the standard deviation of every feature over its
valid frames [shape=(2 * D,)]. The baselines go through the same `trainables.fit` and give
the same `FitResult` as the networks; their fitted object is a `PooledClassifier`, which is
also what ``FitResult.weights`` holds for a refit.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from features.sequences import SequenceSet
from trainables.configs import KNNConfig, RandomForestConfig

__all__ = ["PooledClassifier", "pooled_features", "build_knn", "build_random_forest"]


def pooled_features(data: SequenceSet) -> np.ndarray:
    """Mean and std of each feature over each sequence's valid frames.

    Returns float64 [shape=(N, 2 * D)]: columns ``[mean_0..mean_{D-1}, std_0..std_{D-1}]``.
    One numpy reduction per sequence over its valid slice (padding never counts), with
    float64 accumulation and no float64 copy of the whole set.
    """
    n, d = len(data), data.dim
    out = np.empty((n, 2 * d))
    padded = data.padded
    for i in range(n):
        seq = data.x[i, : int(data.lengths[i])] if padded else data.x[i]
        mean = seq.mean(axis=0, dtype=np.float64)
        out[i, :d] = mean
        out[i, d:] = np.sqrt(np.mean((seq - mean) ** 2, axis=0))
    return out


class PooledClassifier:
    """A scikit-learn estimator fitted on `pooled_features`, predicting all ``n_classes``.

    ``predict_proba`` returns [shape=(N, n_classes)] with a zero column for any class the
    training data lacked (a fold may miss one). ``n_params`` counts what the model stores:
    knn, the stored training values (clips x 2D); random_forest, the total tree nodes.
    """

    def __init__(self, estimator: Pipeline, *, kind: str, n_classes: int) -> None:
        self.estimator = estimator
        self.kind = kind
        self.n_classes = int(n_classes)
        self.n_params = 0

    def fit(self, data: SequenceSet) -> PooledClassifier:
        return self.fit_features(pooled_features(data), data.y)

    def fit_features(self, features: np.ndarray, y: np.ndarray) -> PooledClassifier:
        """Fit on pooled features [shape=(N, 2 * D)] and labels [shape=(N,)]. They are kept
        (``features_``, ``targets_``): a saved member stores these plain arrays and is refit
        from them when loaded, so no pickle is ever needed."""
        last = self.estimator[-1]
        if isinstance(last, KNeighborsClassifier):
            last.set_params(n_neighbors=min(last.n_neighbors, len(features)))
        self.estimator.fit(features, y)
        self.features_, self.targets_ = np.asarray(features), np.asarray(y)
        if isinstance(last, KNeighborsClassifier):
            self.n_params = int(features.size)
        else:
            self.n_params = int(sum(tree.tree_.node_count for tree in last.estimators_))
        return self

    def predict_proba(self, data: SequenceSet) -> np.ndarray:
        """Class probabilities [shape=(N, n_classes)], rows summing to 1."""
        out = np.zeros((len(data), self.n_classes))
        if len(data):
            proba = self.estimator.predict_proba(pooled_features(data))
            out[:, self.estimator.classes_] = proba
        return out


def build_knn(
    config: KNNConfig,
    *,
    input_dim: int,
    n_classes: int,
    seed: int = 0,
    n_jobs: int | None = None,
    class_weighted: bool = True,
    standardize: bool = True,
) -> PooledClassifier:
    """The registry's builder for ``knn`` (``seed`` and ``class_weighted`` do not apply)."""
    del input_dim, seed, class_weighted
    knn = KNeighborsClassifier(
        n_neighbors=config.n_neighbors, weights=config.weights, metric=config.metric, n_jobs=n_jobs
    )
    steps = [StandardScaler(), knn] if standardize else [knn]
    return PooledClassifier(make_pipeline(*steps), kind="knn", n_classes=n_classes)


def build_random_forest(
    config: RandomForestConfig,
    *,
    input_dim: int,
    n_classes: int,
    seed: int = 0,
    n_jobs: int | None = None,
    class_weighted: bool = True,
    standardize: bool = True,
) -> PooledClassifier:
    """The registry's builder for ``random_forest`` (trees need no standardisation)."""
    del input_dim, standardize
    forest = RandomForestClassifier(
        n_estimators=config.n_estimators,
        max_depth=config.max_depth,
        min_samples_leaf=config.min_samples_leaf,
        max_features=None if config.max_features == "all" else config.max_features,
        class_weight="balanced" if class_weighted else None,
        random_state=seed,
        n_jobs=n_jobs,
    )
    return PooledClassifier(make_pipeline(forest), kind="random_forest", n_classes=n_classes)
