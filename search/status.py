"""What `seqsweep sweep status DIR [--watch]` prints: how far the sweep is, its best trials
and its last failures, read from the experiment folder (a local path or a URI, through
`seqsweep.storage`, so from any machine that reaches it).

One frame (`status_frame`) reads ``leaderboard.csv`` (the trials as the driver last wrote
them), ``sweep.json`` (what was planned) and the times of two files: ``plan.json``, written
when the sweep began, and the leaderboard, rewritten after every result. It shows

* progress: (seed, fold) fits done of those planned (trials planned x seeds x folds),
  trials by status, the time since the sweep began and, at the rate of fits so far, an
  estimate of what is left;
* the top finished trials (rank, family, objective, the metric's CV mean ± std);
* the last failures (by trial id, the latest started first) with their errors.

`watch` redraws a frame every few seconds until the sweep has ended (every planned trial
has a final status, or the ensembles are written) or the user presses Ctrl-C.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from search.spec import SweepSpec
from seqsweep import storage
from seqsweep.errors import ConfigError, SeqsweepError, StoreError
from seqsweep.layout import (
    ENSEMBLES_CSV,
    FAILURES,
    FINAL_STATUSES,
    LEADERBOARD,
    PLAN_FILE,
    TrialStatus,
    read_leaderboard,
)

__all__ = ["sweep_status", "status_frame", "watch", "Frame"]

_ORDER = (TrialStatus.OK, TrialStatus.RUNNING, TrialStatus.PRUNED, TrialStatus.FAILED, TrialStatus.ERROR)
#: ANSI: cursor home, clear the screen (a terminal's redraw)
CLEAR = "\x1b[H\x1b[2J"


@dataclass(frozen=True)
class Frame:
    """One look at a sweep: ``text`` to print and whether the sweep has ``ended``."""

    text: str
    ended: bool


def _mtime(path: str) -> float | None:
    """Seconds since the epoch when ``path`` (a local path or a URI) was last written (None
    if it does not exist)."""
    import pyarrow.fs as pafs

    fs, inner = storage.filesystem(path)
    info = fs.get_file_info(inner)
    if info.type == pafs.FileType.NotFound or info.mtime is None:
        return None
    return info.mtime.timestamp()


def _planned(spec: SweepSpec | None) -> int | None:
    """The trials the spec plans (the grid sampler runs one per grid point)."""
    if spec is None:
        return None
    if spec.search.sampler == "grid":
        from search.space import expand_grid

        return len(expand_grid(spec))
    return spec.search.num_samples


def _duration(seconds: float) -> str:
    seconds = int(round(max(seconds, 0)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _fits_done(board: pd.DataFrame) -> int:
    return int(pd.to_numeric(board.get("fits_done"), errors="coerce").fillna(0).sum()) if len(board) else 0


def _progress(board: pd.DataFrame, spec: SweepSpec | None, *, began: float | None, last: float | None,
              now: float, ended: bool) -> list[str]:
    trials = _planned(spec)
    fits = spec.cv.fits if spec else None
    counts = board["status"].value_counts().to_dict()
    parts = [f"{counts.get(s, 0)} {s}" for s in _ORDER if counts.get(s, 0)]
    lines = [f"trials: {len(board)}" + (f" of {trials}" if trials else "") + (f" ({', '.join(parts)})" if parts else "")]
    done = _fits_done(board)
    if trials and fits:
        lines.append(f"fits: {done} of {trials * fits} planned ({trials} trials x {spec.cv.seeds} seeds x "
                     f"{spec.cv.folds} folds; a pruned or failed trial stops early)")
    if began is None:
        return lines
    until = last if ended and last is not None else now
    elapsed = until - began
    text = f"elapsed: {_duration(elapsed)}"
    if ended:
        text += ", ended"
    elif trials and fits and done and elapsed > 0:
        final = board["status"].isin(FINAL_STATUSES)
        running = pd.to_numeric(board.loc[~final, "fits_done"], errors="coerce").fillna(0).sum()
        left = max(trials - int(final.sum()), 0) * fits - running
        text += f"; about {_duration(left / (done / elapsed))} left at {done / elapsed * 60:.1f} fits/min"
    if last is not None and not ended:
        text += f" (leaderboard written {_duration(now - last)} ago)"
    return lines + [text]


def _top(board: pd.DataFrame, metric: str | None, top: int) -> list[str]:
    ok = board[board["status"] == TrialStatus.OK].sort_values("rank").head(top)
    if not len(ok):
        return []
    lines = [f"top {len(ok)}:"]
    for _, row in ok.iterrows():
        scores = ""
        if metric and f"{metric}_mean" in row:
            scores = f"  {metric} {row[f'{metric}_mean']:.4f} ± {row[f'{metric}_std']:.4f}"
        lines.append(f"  {int(row['rank']):>3}  {row['trial_id']:<12} {str(row['model']):<15} "
                     f"objective {row['objective']:.4f}{scores}")
    return lines


def _failures(board: pd.DataFrame, shown: int) -> list[str]:
    failed = board[board["status"].isin(FAILURES)].sort_values("trial_id", ascending=False)
    lines = [f"last failures ({len(failed)} in all):"] if len(failed) else []
    for _, row in failed.head(shown).iterrows():
        # the first line says where and what ("seed 0 fold 0: ValueError: ..."); a traceback may follow
        error = row["error"].strip().splitlines()[0][:200] if isinstance(row["error"], str) else ""
        lines.append(f"  {row['status']}: trial {row['trial_id']} ({row['model']}): {error}")
    return lines


def _load_spec(directory: str) -> SweepSpec | None:
    try:
        return SweepSpec.load(directory)
    except SeqsweepError:  # no sweep.json, or one that no longer checks: the plan is left out
        return None


def status_frame(directory: str, *, now: float | None = None, spec: SweepSpec | None = None,
                 top: int = 5, failures: int = 3) -> Frame:
    """One look at the experiment ``directory`` (a local path or a URI), ``now`` seconds since
    the epoch (default: the clock); ``spec`` saves re-reading ``sweep.json`` between frames."""
    directory = storage.resolve(directory)
    board_path = storage.join(directory, LEADERBOARD)
    spec = spec or _load_spec(directory)
    if spec is None and not storage.exists(board_path):  # a sweep that began has its sweep.json
        raise StoreError(directory, f"a sweep's experiment folder holds {LEADERBOARD}",
                         "no leaderboard (is this <storage>/<name>?)")
    board = read_leaderboard(directory)
    trials = _planned(spec)
    final = int(board["status"].isin(FINAL_STATUSES).sum())
    ended = (trials is not None and final >= trials) or storage.exists(storage.join(directory, ENSEMBLES_CSV))
    now = time.time() if now is None else now
    lines = [directory]
    lines += _progress(board, spec, began=_mtime(storage.join(directory, PLAN_FILE)),
                       last=_mtime(board_path), now=now, ended=ended)
    lines += _top(board, spec.metric if spec else None, top)
    lines += _failures(board, failures)
    return Frame("\n".join(lines), ended)


def sweep_status(directory: str) -> str:
    """`status_frame`'s text: how far the sweep in ``directory`` is, its best and its failures."""
    return status_frame(directory).text


def watch(directory: str, *, interval: float = 5.0, echo: Callable[[str], object] = print,
          clear: bool | None = None, clock: Callable[[], float] = time.time,
          sleep: Callable[[float], object] = time.sleep, max_frames: int | None = None) -> int:
    """Print a frame of ``directory`` every ``interval`` seconds until the sweep has ended
    (then its last frame), Ctrl-C, or ``max_frames``; returns how many frames it printed.
    ``clear`` (default: when stdout is a terminal) redraws in place instead of appending."""
    if not (isinstance(interval, (int, float)) and math.isfinite(interval) and interval > 0):
        raise ConfigError("--interval", "must be a number of seconds > 0", interval)
    clear = sys.stdout.isatty() if clear is None else clear
    spec = _load_spec(storage.resolve(directory))
    frames = 0
    try:
        while True:
            frame = status_frame(directory, now=clock(), spec=spec)
            frames += 1
            footer = "sweep ended" if frame.ended else f"refreshing every {interval:g} s; Ctrl-C to stop"
            echo((CLEAR if clear else "") + frame.text + "\n" + footer + ("" if clear else "\n"))
            if frame.ended or (max_frames is not None and frames >= max_frames):
                return frames
            sleep(interval)
    except KeyboardInterrupt:
        echo("\nstopped watching (the sweep goes on)\n")
        return frames
