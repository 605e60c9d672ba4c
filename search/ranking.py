"""How trials are ranked, and the settings' columns of the leaderboard.

No Ray here: the results room and `seqsweep sweep status` read and rank leaderboards
without loading Ray Tune; `search.leaderboard.LiveLeaderboard` (a Tune callback) writes them.
The columns, their order and the files' one reader and writer are `seqsweep.layout`'s.

Columns, in this order (`seqsweep.layout.leaderboard_order`): ``FIRST`` (rank, trial id,
status, model family), ``METRIC_COLUMNS`` (the objective, then ``<metric>_mean/_std/_min``),
``COSTS`` (what deploying the trial's bag costs), ``CV`` (the bag's shape), the trial's
settings (`setting_columns`: the registry's families in order, each config's fields in
declaration order), ``RUN`` (when the trial started, its checkpoint folder) and ``error``
last. A setting is filled only on the rows of trials that used it (`trainables.settings`),
and integer settings and counts are integer columns (pandas ``Int64``: empty, never ``16.0``).
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
from typing import Any

import pandas as pd

from seqsweep.layout import (
    ERROR,
    FIRST,
    FOLD_COLUMNS,
    INTEGER_COLUMNS,
    METRICS,
    OBJECTIVE,
    PREDICT_COST,
    RUN,
    SCORES,
    STATUS,
    TrialStatus,
    leaderboard_order,
)
from trainables.settings import integer_keys, setting_keys

__all__ = ["rank_rows", "setting_column", "setting_columns", "pareto_front", "fold_frame", "integer_typed"]

_RESERVED = {*FIRST, *SCORES, *RUN, *FOLD_COLUMNS, *METRICS, "metric", "weights", "fits_total"}
"""Sweep-level words: a family's setting of that name gets ``<family>_<name>`` (knn_metric)."""


def setting_column(family: str, key: str) -> str:
    """The leaderboard column of family ``family``'s flat setting ``key``: ``key`` itself,
    or ``<family>_<key>`` where ``key`` is a sweep-level word (kNN's ``metric`` ->
    ``knn_metric``, its ``weights`` -> ``knn_weights``)."""
    return f"{family}_{key}" if key in _RESERVED else key


@functools.cache
def _declared() -> tuple[dict[str, int], dict[str, int], frozenset[str], frozenset[str]]:
    """Column -> position, element prefix -> position, integer columns, integer prefixes."""
    order: dict[str, int] = {}
    prefixes: dict[str, int] = {}
    ints, int_prefixes = integer_keys()
    for family, key, _ in setting_keys():
        column = setting_column(family, key)
        target = prefixes if key.endswith("_") else order
        target.setdefault(column, len(order) + len(prefixes))
        if column != key and key in ints:
            ints = ints | {column}
    return order, prefixes, frozenset(ints | INTEGER_COLUMNS), frozenset(int_prefixes)


def _element(column: str) -> tuple[str, int] | None:
    """``units_1`` -> (``units_``, 1): a tuple field's element key, if ``column`` is one."""
    match = re.fullmatch(r"(.+_)(\d+)", column)
    return (match[1], int(match[2])) if match else None


def _is_integer(column: str) -> bool:
    _, _, ints, int_prefixes = _declared()
    element = _element(column)
    return column in ints or (element is not None and element[0] in int_prefixes)


def setting_columns(columns: list[str]) -> list[str]:
    """The settings among ``columns``, in the registry's declared order (a tuple field's
    elements by index after its count key; unknown keys last, by name)."""
    order, prefixes, _, _ = _declared()

    def position(column: str) -> tuple[float, float, str]:
        if column in order:
            return order[column], 0, ""
        element = _element(column)
        if element is not None and element[0] in prefixes:
            return prefixes[element[0]], element[1], ""
        return math.inf, 0, column

    return sorted((c for c in columns if c not in FIRST and c not in SCORES and c not in RUN), key=position)


def integer_typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Integer columns as ``Int64`` (a value that is not a whole number leaves its column as it is)."""
    for column in frame.columns:
        kind = frame[column].dtype
        if _is_integer(column) and not (pd.api.types.is_bool_dtype(kind) or pd.api.types.is_integer_dtype(kind)):
            # e.g. a refused config's sampled value stays as it came
            with contextlib.suppress(TypeError, ValueError):
                frame[column] = pd.to_numeric(frame[column]).astype("Int64")
    return frame


def rank_rows(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows -> a frame, columns in the stable order of this module's docstring.

    Only finished trials (`TrialStatus.OK`) are ranked: by objective, best first, rank 1..n.
    Every other trial (running, pruned by a scheduler, failed, error) follows, unranked
    (empty ``rank``), by objective and then id: a partial or failed score is not comparable.
    """
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=FIRST + SCORES)
    for col in [*SCORES, *RUN]:
        if col not in frame:
            frame[col] = math.nan if col != ERROR else ""
    finished = frame[STATUS] == TrialStatus.OK
    frame = frame.assign(_unranked=~finished).sort_values(
        ["_unranked", OBJECTIVE, "trial_id"], ascending=[True, False, True], na_position="last", kind="stable",
    ).drop(columns="_unranked").reset_index(drop=True)
    n_ok = int(finished.sum())
    frame["rank"] = list(range(1, n_ok + 1)) + [None] * (len(frame) - n_ok)
    settings = setting_columns(list(frame.columns))
    return integer_typed(frame[leaderboard_order(settings)].copy())


def fold_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """``leaderboard_folds.csv``'s rows -> a frame: `FOLD_COLUMNS`, then any other per-fit
    key the trial reported (by name), sorted by trial, seed and fold; counts as ``Int64``."""
    frame = pd.DataFrame(rows)
    extra = sorted(c for c in frame.columns if c not in FOLD_COLUMNS)
    frame = frame.reindex(columns=[*FOLD_COLUMNS, *extra])
    frame = frame.sort_values(["trial_id", "seed", "fold"], kind="stable").reset_index(drop=True)
    return integer_typed(frame)


def pareto_front(board: pd.DataFrame) -> pd.DataFrame:
    """The finished trials on the frontier of CV objective (higher is better) against
    `PREDICT_COST` (lower is better): those no other finished trial beats on one and
    matches or beats on the other (AutoGluon's ``only_pareto_frontier``). Ranked order kept;
    a trial without a prediction time (or a board written before it was measured) is left out."""
    if PREDICT_COST not in board:
        return board.iloc[0:0]
    ok = board[(board[STATUS] == TrialStatus.OK) & board[OBJECTIVE].notna() & board[PREDICT_COST].notna()]
    objective = ok[OBJECTIVE].to_numpy(dtype=float)
    cost = ok[PREDICT_COST].to_numpy(dtype=float)
    keep = [not ((objective >= o) & (cost <= c) & ((objective > o) | (cost < c))).any()
            for o, c in zip(objective, cost)]
    return ok[keep]
