"""The ledger of test looks: every scoring of an experiment's held-out test split, kept in
``test_looks.csv`` beside the leaderboards.

A test figure is only what it claims (an unbiased estimate on unseen clips) the first time
it is read: each further look is a chance to choose by it. So each scoring appends rows
here, one per model scored (when, the command, its settings, what was scored, the figure,
on how many test items) under a run number, and a rerun of ``seqsweep results ensemble``
says how many looks came before. Nothing is ever removed from it.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from seqsweep import storage
from seqsweep.layout import ENSEMBLES_CSV, ENSEMBLES_RUN, TEST_LOOKS

__all__ = ["LOOK_COLUMNS", "Looks", "command_line", "keep_earlier_table", "read_looks", "record_looks"]

#: The columns of ``test_looks.csv``.
LOOK_COLUMNS = ["run", "when", "command", "settings", "scored", "metric", "figure", "n_test", "unit"]


def command_line() -> str:
    """The command this process runs, as typed (``seqsweep results ensemble runs/x``)."""
    program = os.path.basename(sys.argv[0]) or "python"
    if program == "__main__.py":  # python -m seqsweep
        program = "python -m " + os.path.basename(os.path.dirname(sys.argv[0]))
    return " ".join([program, *sys.argv[1:]])


def read_looks(experiment_dir: str) -> pd.DataFrame:
    """``test_looks.csv`` of an experiment (an empty frame with `LOOK_COLUMNS` if none)."""
    data = storage.read_bytes(storage.join(experiment_dir, TEST_LOOKS))
    if data is None:
        return pd.DataFrame(columns=LOOK_COLUMNS)
    return pd.read_csv(io.BytesIO(data), dtype={"command": str, "settings": str, "scored": str})


class Looks:
    """What came before in an experiment's ledger: ``runs`` (earlier scorings of the test
    split) and ``rows`` (earlier looks, one per model scored)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.runs = int(frame["run"].max()) if len(frame) else 0
        self.rows = len(frame)

    def __str__(self) -> str:
        if not self.runs:
            return "the test split of this experiment had not been scored before"
        return (f"the test split of this experiment was scored {self.runs} time(s) before ({self.rows} looks in "
                f"{TEST_LOOKS}); every figure read again is one more chance to choose by it")


def keep_earlier_table(experiment_dir: str, run: int) -> str | None:
    """Copy the existing ``ensembles.csv`` (written by run ``run``) to ``ensembles_run<run>.csv``
    before a new run replaces it; its path, or None when there was none."""
    data = storage.read_bytes(storage.join(experiment_dir, ENSEMBLES_CSV))
    if data is None:
        return None
    path = storage.join(experiment_dir, ENSEMBLES_RUN.format(run=max(run, 1)))
    storage.write_bytes_atomic(data, path)
    return path


def record_looks(experiment_dir: str, rows: Sequence[Mapping[str, Any]], *, run: int, command: str,
                 settings: str, metric: str, n_test: int, unit: str) -> pd.DataFrame:
    """Append one row per ``{"scored": ..., "figure": ...}`` in ``rows`` to ``test_looks.csv``
    (rewritten atomically with the earlier rows first); returns the whole ledger."""
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    new = pd.DataFrame([{"run": run, "when": when, "command": command, "settings": settings, "scored": r["scored"],
                         "metric": metric, "figure": float(r["figure"]), "n_test": n_test, "unit": unit}
                        for r in rows], columns=LOOK_COLUMNS)
    earlier = read_looks(experiment_dir)
    frame = new if earlier.empty else pd.concat([earlier, new], ignore_index=True)
    storage.write_csv_atomic(frame, storage.join(experiment_dir, TEST_LOOKS))
    return frame
