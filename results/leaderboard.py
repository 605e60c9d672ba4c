"""Reading and printing a sweep's leaderboard (``seqsweep results leaderboard DIR``).

The sweep writes ``leaderboard.csv`` itself, live and atomically
(`search.leaderboard.LiveLeaderboard`); this module only reads it and lays it out for a
terminal.
"""

from __future__ import annotations

import math
import os

import pandas as pd

from search.ranking import integer_typed, pareto_front, rank_rows, setting_columns
from seqsweep import storage
from seqsweep.errors import StoreError
from seqsweep.layout import LEADERBOARD, METRICS, PREDICT_COST, read_leaderboard

__all__ = ["load_leaderboard", "format_leaderboard"]

_WIDTH = 80


def load_leaderboard(experiment_dir: str | os.PathLike) -> pd.DataFrame:
    """``leaderboard.csv`` of an experiment folder (`seqsweep.layout.read_leaderboard`),
    ranked best first, integer columns as integers (``Int64``: ``rank`` 1, not 1.0, beside
    an unranked row).

    Raises `StoreError` when the folder holds no leaderboard. A board without ``rank``
    (written by hand) is ranked by `search.leaderboard.rank_rows`.
    """
    directory = storage.resolve(experiment_dir)
    path = storage.join(directory, LEADERBOARD)
    if not storage.exists(path):
        raise StoreError(path, "a sweep's experiment folder must hold its leaderboard",
                         "missing (is this <storage>/<name>?)")
    board = read_leaderboard(directory)
    if "rank" not in board:
        board = rank_rows(board.to_dict("records"))
    return integer_typed(board.sort_values("rank", kind="stable").reset_index(drop=True))


def _short(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{int(value)}" if value.is_integer() else f"{value:.3g}"
    return str(value)


def _seconds(value: object) -> str:
    return f"{value:.3g}" if pd.notna(value) else ""


def format_leaderboard(board: pd.DataFrame, *, top: int | None = 10, metric: str = "balanced_accuracy",
                       pareto: bool = False) -> str:
    """A plain-text table of the ``top`` best trials (all with ``top=None``).

    Columns: rank, trial, status, model, objective, ``metric`` mean ± std and min, the
    other metrics' means, the costs (parameters, seconds per fit, prediction seconds per
    1,000 clips of the bag), the settings of each row's own family that differ between
    that family's trials (``key=value``; a setting its model did not use is never
    shown), and the error of failed trials. With ``pareto``, only the finished trials on
    the frontier of objective against prediction time (`search.ranking.pareto_front`).
    """
    if board.empty:
        return "no trials yet"
    if pareto:
        board = pareto_front(board)
        if board.empty:
            return "no finished trial with a prediction time yet"
    shown = board if top is None else board.head(top)
    candidates = setting_columns(list(board.columns))
    varying = {}  # per model family: the hyperparameters its trials do not all share
    for family, rows in board.groupby("model", dropna=False, sort=False):
        varying[family] = [c for c in candidates
                           if rows[c].notna().any() and rows[c].astype(str).nunique(dropna=False) > 1]
    out = pd.DataFrame({
        "rank": shown["rank"].map(_short), "trial": shown["trial_id"], "status": shown["status"], "model": shown["model"],
        "objective": shown["objective"].map(lambda v: f"{v:.3f}" if pd.notna(v) else ""),
    })
    if f"{metric}_mean" in shown:
        out[metric] = [f"{m:.3f} ± {s:.3f}" if pd.notna(m) else "" for m, s in
                       zip(shown[f"{metric}_mean"], shown[f"{metric}_std"])]
        out["min"] = shown[f"{metric}_min"].map(lambda v: f"{v:.3f}" if pd.notna(v) else "")
    for other in METRICS:
        if other != metric and f"{other}_mean" in shown:
            out[other] = shown[f"{other}_mean"].map(lambda v: f"{v:.3f}" if pd.notna(v) else "")
    if "n_params" in shown:
        out["params"] = shown["n_params"].map(lambda v: _short(float(v)) if pd.notna(v) else "")
    if "fit_seconds_mean" in shown:
        out["s/fit"] = shown["fit_seconds_mean"].map(_seconds)
    if PREDICT_COST in shown:
        out["pred s/1k"] = shown[PREDICT_COST].map(_seconds)
    config = []
    for _, row in shown.iterrows():
        text = " ".join(f"{c}={_short(row[c])}" for c in varying.get(row["model"], [])
                        if _short(row[c]) not in ("", "nan"))
        config.append(text if len(text) <= _WIDTH else text[:_WIDTH - 3] + "...")
    out["config"] = config
    if "error" in shown and (shown["error"].astype(str).str.len() > 0).any():
        out["error"] = shown["error"].astype(str).map(lambda e: e if len(e) <= _WIDTH else e[:_WIDTH - 3] + "...")
    counts = board["status"].value_counts().to_dict()
    head = f"{len(board)} trials (" + ", ".join(f"{n} {s}" for s, n in counts.items()) + ")"
    if pareto:
        head = f"{len(board)} trials on the frontier of objective against {PREDICT_COST}"
    if top is not None and len(board) > top:
        head += f"; the best {top} shown"
    return head + "\n" + out.to_string(index=False)
