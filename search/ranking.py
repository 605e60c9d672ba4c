"""The leaderboard's table: its columns, how trials are ranked, and reading it back.

No Ray here: the results room and `seqsweep sweep status` read and rank leaderboards
without loading Ray Tune; `search.leaderboard.LiveLeaderboard` (a Tune callback) writes them.
"""

from __future__ import annotations

import io
import math
from typing import Any

import pandas as pd

from seqsweep.layout import LEADERBOARD
from seqsweep.storage import read_bytes
from trainables.metrics import METRICS

__all__ = ["rank_rows", "read_leaderboard", "read_csv", "FIRST", "SCORES", "FOLD_COLUMNS"]

FIRST = ["rank", "trial_id", "status", "model"]
SCORES = ["objective", *[f"{m}_{s}" for m in METRICS for s in ("mean", "std", "min")],
           "n_params", "train_seconds", "seeds", "folds", "fits_done", "error"]
FOLD_COLUMNS = ["trial_id", "model", "seed", "fold", *METRICS, "seconds", "best_epoch"]


def read_csv(path: str) -> pd.DataFrame | None:
    """A leaderboard CSV (None if there is no such file)."""
    data = read_bytes(path)
    # trial ids are hex strings: one made of digits only ("14986905") must stay a string
    return None if data is None else pd.read_csv(io.BytesIO(data), dtype={"trial_id": str})


def read_leaderboard(experiment_dir: str) -> pd.DataFrame:
    """``leaderboard.csv`` of an experiment folder (empty frame if there is none yet)."""
    frame = read_csv(f"{experiment_dir.rstrip('/')}/{LEADERBOARD}")
    return pd.DataFrame(columns=FIRST + SCORES) if frame is None else frame


def rank_rows(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows -> a frame, columns in a stable order (identity, hyperparameters sorted, scores).

    Only finished trials (status ``ok``) are ranked: by objective, best first, rank 1..n.
    Every other trial (running, pruned by a scheduler, failed, error) follows, unranked
    (empty ``rank``), by objective and then id: a partial or failed score is not comparable.
    """
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=FIRST + SCORES)
    for col in SCORES:
        if col not in frame:
            frame[col] = math.nan if col != "error" else ""
    finished = frame["status"] == "ok"
    frame = frame.assign(_unranked=~finished).sort_values(
        ["_unranked", "objective", "trial_id"], ascending=[True, False, True], na_position="last", kind="stable",
    ).drop(columns="_unranked").reset_index(drop=True)
    n_ok = int(finished.sum())
    frame["rank"] = pd.array(list(range(1, n_ok + 1)) + [None] * (len(frame) - n_ok), dtype="Int64")
    params = sorted(c for c in frame.columns if c not in FIRST and c not in SCORES)
    return frame[FIRST + params + SCORES]
