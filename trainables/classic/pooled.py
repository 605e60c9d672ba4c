"""Classic baselines (scikit-learn) on per-clip pooled features: ``knn``, ``random_forest``.

Each clip becomes one vector, by the config's ``pooling``:

* ``meanstd``: the mean and the standard deviation of every feature over its valid frames
  [shape=(2 * D,)] (`pooled_features`);
* ``bag``: on token data, the frequency of each id, counts / length [shape=(V,)];
* ``bag2``: ``bag`` plus the frequency of each ordered pair of neighbouring ids, counts /
  (length - 1): dense [shape=(V + V * V,)] for a vocabulary of up to `DENSE_BIGRAM_VOCAB`
  ids, else hashed into `BIGRAM_BUCKETS` columns [shape=(V + BIGRAM_BUCKETS,)]
  (`bag_features`);
* ``auto``: ``bag`` on token data (`SequenceSet.vocab_size` set), ``meanstd`` otherwise.

An id outside the training vocabulary counts as the unknown id 0. The baselines go
through the same `trainables.fit` and give the same `FitResult` as the networks; their
fitted object is a `PooledClassifier`, which is also what ``FitResult.weights`` holds for a
refit. A saved one is its pooled training features and labels (plain arrays); the
vocabulary size is read back from their width, so nothing else needs saving.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from features.sequences import SequenceSet
from features.tokens import UNKNOWN_ID
from seqsweep.errors import ConfigError
from trainables.configs import KNNConfig, RandomForestConfig

__all__ = [
    "PooledClassifier",
    "pooled_features",
    "bag_features",
    "bag_width",
    "build_knn",
    "build_random_forest",
    "DENSE_BIGRAM_VOCAB",
    "BIGRAM_BUCKETS",
]

#: Up to this many ids, ``bag2`` keeps one column per ordered pair (V * V columns).
DENSE_BIGRAM_VOCAB = 64
#: Above `DENSE_BIGRAM_VOCAB` ids, ``bag2`` hashes the pairs into this many columns.
BIGRAM_BUCKETS = 4096


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


def bag_width(vocab_size: int, *, bigrams: bool) -> int:
    """Columns of `bag_features` for ``vocab_size`` ids."""
    if not bigrams:
        return vocab_size
    return vocab_size + (vocab_size**2 if vocab_size <= DENSE_BIGRAM_VOCAB else BIGRAM_BUCKETS)


def _vocab_of_width(width: int, *, bigrams: bool) -> int:
    """The inverse of `bag_width` (the fitted features' width gives the vocabulary back)."""
    if not bigrams:
        return width
    if width > bag_width(DENSE_BIGRAM_VOCAB, bigrams=True):
        return width - BIGRAM_BUCKETS
    return round((math.sqrt(1 + 4 * width) - 1) / 2)


def _ids(data: SequenceSet, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Every valid step's id (out of range -> unknown) and its row: two int64 [shape=(sum T,)]."""
    if data.padded:
        valid = np.arange(data.x.shape[1])[None, :] < data.lengths[:, None]
        flat = data.x[..., 0][valid]
    else:
        flat = np.concatenate([s[:, 0] for s in data.x]) if len(data) else np.zeros(0, np.float32)
    ids = np.rint(flat).astype(np.int64)
    ids[(ids < 0) | (ids >= vocab_size)] = UNKNOWN_ID
    rows = np.repeat(np.arange(len(data)), data.lengths)
    return ids, rows


def bag_features(data: SequenceSet, *, vocab_size: int, bigrams: bool = False) -> np.ndarray:
    """Bags of tokens: id frequencies, and with ``bigrams`` neighbouring-pair frequencies.

    ``data`` holds one id per step (D = 1); ids outside ``[0, vocab_size)`` count as the
    unknown id. Returns float64 [shape=(N, bag_width(vocab_size, bigrams=bigrams))]:
    columns ``0..V-1`` are counts / length; with ``bigrams`` the rest are pair counts /
    (length - 1) (all zero for a length-1 sequence), pair ``(a, b)`` in column
    ``V + a * V + b``, or above `DENSE_BIGRAM_VOCAB` ids in a hashed column (Knuth's
    multiplicative hash of ``a * V + b``). Vectorised over the whole set.
    """
    n, v = len(data), int(vocab_size)
    ids, rows = _ids(data, v)
    lengths = np.maximum(data.lengths, 1).astype(np.float64)
    uni = np.bincount(rows * v + ids, minlength=n * v).reshape(n, v) / lengths[:, None]
    if not bigrams:
        return uni
    same = rows[1:] == rows[:-1]  # neighbours inside one sequence
    pair = ids[:-1][same] * v + ids[1:][same]
    if v <= DENSE_BIGRAM_VOCAB:
        cols = v * v
    else:
        cols = BIGRAM_BUCKETS
        pair = ((pair.astype(np.uint64) * np.uint64(2654435761)) % np.uint64(2**32)) >> np.uint64(20)
        pair = pair.astype(np.int64) % cols
    pair_rows = rows[1:][same]
    bi = np.bincount(pair_rows * cols + pair, minlength=n * cols).reshape(n, cols)
    bi = bi / np.maximum(data.lengths - 1, 1).astype(np.float64)[:, None]
    return np.concatenate([uni, bi], axis=1)


class PooledClassifier:
    """A scikit-learn estimator fitted on pooled features, predicting all ``n_classes``.

    ``pooling`` is the config's (see the module doc); ``"auto"`` is resolved on each set
    it pools (bag on token data). ``predict_proba`` returns [shape=(N, n_classes)] with a
    zero column for any class the training data lacked (a fold may miss one).
    ``n_params`` counts what the model stores: knn, the stored training values (clips x
    columns); random_forest, the total tree nodes.
    """

    def __init__(self, estimator: Pipeline, *, kind: str, n_classes: int, pooling: str = "auto") -> None:
        self.estimator = estimator
        self.kind = kind
        self.n_classes = int(n_classes)
        self.pooling = pooling
        self.n_params = 0

    def _mode(self, data: SequenceSet) -> str:
        """``meanstd``, ``bag`` or ``bag2`` for ``data``; `ConfigError` for a bag of numbers."""
        if self.pooling == "auto":
            return "bag" if data.is_tokens else "meanstd"
        if self.pooling != "meanstd" and not data.is_tokens:
            raise ConfigError(f"{self.kind}.pooling", "bag / bag2 count token ids: they need a token feature "
                              "set (see `seqsweep features import --tokens`)", self.pooling)
        return self.pooling

    def features(self, data: SequenceSet, *, vocab_size: int | None = None) -> np.ndarray:
        """``data`` pooled as this model pools it [shape=(N, F)]. ``vocab_size`` is the
        training vocabulary's (default: ``data``'s; after a fit, the fitted one)."""
        mode = self._mode(data)
        if mode == "meanstd":
            return pooled_features(data)
        bigrams = mode == "bag2"
        if vocab_size is None:
            fitted = getattr(self, "features_", None)
            vocab_size = data.vocab_size if fitted is None else _vocab_of_width(fitted.shape[1], bigrams=bigrams)
        return bag_features(data, vocab_size=vocab_size, bigrams=bigrams)

    def fit(self, data: SequenceSet) -> PooledClassifier:
        return self.fit_features(self.features(data, vocab_size=data.vocab_size), data.y)

    def fit_features(self, features: np.ndarray, y: np.ndarray) -> PooledClassifier:
        """Fit on pooled features [shape=(N, F)] and labels [shape=(N,)]. They are kept
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
            proba = self.estimator.predict_proba(self.features(data))
            out[:, self.estimator.classes_] = proba
        return out


def build_knn(
    config: KNNConfig,
    *,
    input_dim: int,
    n_classes: int,
    vocab_size: int | None = None,
    seed: int = 0,
    n_jobs: int | None = None,
    class_weighted: bool = True,
    standardize: bool = True,
) -> PooledClassifier:
    """The registry's builder for ``knn`` (``seed`` and ``class_weighted`` do not apply; the
    vocabulary comes from the data it is fitted on)."""
    del input_dim, vocab_size, seed, class_weighted
    knn = KNeighborsClassifier(
        n_neighbors=config.n_neighbors, weights=config.weights, metric=config.metric, n_jobs=n_jobs
    )
    steps = [StandardScaler(), knn] if standardize else [knn]
    return PooledClassifier(make_pipeline(*steps), kind="knn", n_classes=n_classes, pooling=config.pooling)


def build_random_forest(
    config: RandomForestConfig,
    *,
    input_dim: int,
    n_classes: int,
    vocab_size: int | None = None,
    seed: int = 0,
    n_jobs: int | None = None,
    class_weighted: bool = True,
    standardize: bool = True,
) -> PooledClassifier:
    """The registry's builder for ``random_forest`` (trees need no standardisation; the
    vocabulary comes from the data it is fitted on)."""
    del input_dim, vocab_size, standardize
    forest = RandomForestClassifier(
        n_estimators=config.n_estimators,
        max_depth=config.max_depth,
        min_samples_leaf=config.min_samples_leaf,
        max_features=None if config.max_features == "all" else config.max_features,
        class_weight="balanced" if class_weighted else None,
        random_state=seed,
        n_jobs=n_jobs,
    )
    return PooledClassifier(make_pipeline(forest), kind="random_forest", n_classes=n_classes,
                            pooling=config.pooling)
