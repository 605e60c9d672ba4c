"""What `seqsweep sweep status DIR` prints: counts by status and the best trial so far."""

from __future__ import annotations

from search.ranking import read_leaderboard
from search.spec import SweepSpec
from seqsweep import storage
from seqsweep.errors import SeqsweepError, StoreError
from seqsweep.layout import LEADERBOARD

__all__ = ["sweep_status"]


def sweep_status(directory: str) -> str:
    """Counts by status and the best finished trial of the experiment ``directory`` (a local
    path or a URI)."""
    directory = storage.resolve(directory)
    if not storage.exists(storage.join(directory, LEADERBOARD)):
        raise StoreError(directory, f"a sweep's experiment folder holds {LEADERBOARD}",
                         "no leaderboard (is this <storage>/<name>?)")
    board = read_leaderboard(directory)
    try:
        planned = SweepSpec.load(directory).search.num_samples
    except SeqsweepError:  # no sweep.json, or one that no longer checks: the count is left out
        planned = None
    counts = board["status"].value_counts().to_dict()
    order = ["ok", "running", "pruned", "failed", "error"]
    parts = [f"{counts.get(s, 0)} {s}" for s in order if counts.get(s, 0)]
    head = f"{directory}: {len(board)} trials" + (f" of {planned}" if planned else "") + (
        f" ({', '.join(parts)})" if parts else "")
    lines = [head]
    scored = board[board["status"] == "ok"]
    if len(scored):
        best = scored.iloc[0]
        metric_cols = [c for c in board.columns if c.endswith("_mean")]
        shown = ", ".join(f"{c[:-5]} {best[c]:.4f} ± {best[c[:-5] + '_std']:.4f}" for c in metric_cols[:3])
        lines.append(f"best: trial {best['trial_id']} ({best['model']}), objective {best['objective']:.4f}; {shown}")
    failed = board[board["status"].isin(["failed", "error"])]
    for _, row in failed.head(5).iterrows():
        lines.append(f"{row['status']}: trial {row['trial_id']} ({row['model']}): {row['error']}")
    return "\n".join(lines)
