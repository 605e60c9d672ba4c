"""Synthetic token sequences (chord progressions) for the tests, the example and the benchmark.

Each of K classes ("composers") is a Markov chain over the same V chord values. A class
has its own *progression*: a permutation ``succ`` of the chords, and at each step the next
chord is ``succ[current]`` with probability ``follow``, else a draw from the class's
chord frequencies. Those frequencies are uniform blended with a class-specific
Dirichlet draw by ``skew``, so the classes differ a little in how often each chord occurs
(a bag of chords gets some of the way) and much more in which chord follows which (a
model of order gets further).

Sequences have random lengths and are written the way the seed's chord pickles are: a
list of ``(float64 array, int label)`` pairs, each array padded with -1 at both ends to
one common length, e.g. ``(array([-1., -1., 144., ..., 32., -1., -1.]), 0)``. Chord
values are distinct non-negative integers spread over ``[0, 12 V)``, not ``0..V-1``, so
the store's id map has something to do. Sequence ``i`` of class ``k`` depends only on
``(seed, k, i)`` and the class parameters on ``(seed, k)``.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from seqsweep.errors import ConfigError

__all__ = ["PAD", "make_token_sequences", "write_token_dataset"]

PAD = -1.0
"""The padding marker around every written sequence (`features.importers.read_pickle`'s default)."""


def _check(name: str, value: int, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(name, f"must be an integer >= {low}", value)


def make_token_sequences(
    *,
    classes: int = 4,
    sequences: int = 40,
    vocab: int = 24,
    min_length: int = 12,
    max_length: int = 40,
    follow: float = 0.25,
    skew: float = 0.2,
    seed: int = 0,
) -> tuple[list[np.ndarray], list[int]]:
    """K classes of Markov-chain chord sequences, unpadded.

    Parameters
    ----------
    classes : K (>= 2).
    sequences : sequences per class (>= 1).
    vocab : V, distinct chord values (>= 2).
    min_length, max_length : each sequence's length is uniform in this range (inclusive).
    follow : probability that the next chord is the class's successor of the current one
        (the order signal), in [0, 1].
    skew : how far each class's chord frequencies move from uniform (the bag signal), in [0, 1].
    seed : everything is drawn from generators seeded with ``(seed, ...)``.

    Returns
    -------
    ``(seqs, labels)``: ``K * sequences`` int64 arrays [shape=(T_i,)] of chord values and
    their class indices, class by class.
    """
    _check("classes", classes, 2)
    _check("sequences", sequences, 1)
    _check("vocab", vocab, 2)
    _check("min_length", min_length, 1)
    _check("max_length", max_length, min_length)
    _check("seed", seed, 0)
    for name, value in (("follow", follow), ("skew", skew)):
        if not 0.0 <= value <= 1.0:
            raise ConfigError(name, "must be in [0, 1]", value)
    values = np.sort(np.random.default_rng([seed, 0]).choice(12 * vocab, size=vocab, replace=False))
    seqs: list[np.ndarray] = []
    labels: list[int] = []
    for k in range(classes):
        rng = np.random.default_rng([seed, 1, k])
        succ = rng.permutation(vocab)
        freq = (1.0 - skew) / vocab + skew * rng.dirichlet(np.ones(vocab))
        for i in range(sequences):
            draw = np.random.default_rng([seed, 2, k, i])
            n = int(draw.integers(min_length, max_length, endpoint=True))
            follows = draw.random(n) < follow
            fresh = draw.choice(vocab, size=n, p=freq)
            ids = np.empty(n, dtype=np.int64)
            ids[0] = fresh[0]
            for t in range(1, n):
                ids[t] = succ[ids[t - 1]] if follows[t] else fresh[t]
            seqs.append(values[ids])
            labels.append(k)
    return seqs, labels


def write_token_dataset(
    out_dir: str | os.PathLike[str],
    *,
    classes: int = 4,
    sequences: int = 40,
    vocab: int = 24,
    min_length: int = 12,
    max_length: int = 40,
    seed: int = 0,
    name: str = "chords.pkl",
) -> Path:
    """Write `make_token_sequences` as the seed's chord pickle ``out_dir/name``; return its path.

    Every sequence is padded with `PAD` to ``max_length + 4`` values: 0 to 2 at the front
    (drawn per sequence) and the rest at the end. Labels are the class indices (ints).
    """
    seqs, labels = make_token_sequences(classes=classes, sequences=sequences, vocab=vocab,
                                        min_length=min_length, max_length=max_length, seed=seed)
    total = max_length + 4
    rng = np.random.default_rng([seed, 3])
    pairs = []
    for seq, label in zip(seqs, labels):
        padded = np.full(total, PAD)
        lead = int(rng.integers(0, 3))
        padded[lead:lead + len(seq)] = seq
        pairs.append((padded, int(label)))
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    path.write_bytes(pickle.dumps(pairs, protocol=4))
    return path
