"""The report of a sweep: PNG figures and a markdown summary in ``<experiment>/report/``.

* ``confusion_best_member.png``, ``confusion_final_choice.png``: row-normalised confusion
  matrices on the held-out test split of the best member (rank 1 by the CV objective) and
  the final choice (what seqsweep hands over: the best candidate by cross-fitted
  out-of-fold figure, `results.choice`); neither choice looks at the test split.
* ``learning_curves.png``: training loss and validation ``metric`` per epoch of the top
  trials, each the mean over its (seed, fold) fits.
* ``search_history.png``: each trial's objective in the order the trials started, and the
  running best.
* ``cv_spread.png``: every (seed, fold) value of ``metric`` for the top trials, coloured
  by seed, so that seed instability shows at a glance.
* ``report.md``: links the figures; the leaderboard's top rows, ``ensembles.csv`` and
  per-class precision, recall and F1 on test of the best member and the final choice, whose
  one out-of-fold figure (the choice cross-fitted) stands beside its test figure.

The confusion matrices and per-class tables need the saved test predictions of
``seqsweep results ensemble DIR``; without them the rest is written and the report says so.
Figures are drawn on `matplotlib.figure.Figure` objects (the Agg canvas, no pyplot state).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from results.experiment import Experiment, load_experiment
from seqsweep import storage
from seqsweep.errors import StoreError
from seqsweep.layout import (
    ENSEMBLE_DIR,
    ENSEMBLE_JSON,
    ENSEMBLES_CSV,
    REPORT_DIR,
    REPORT_FILE,
    TEST_PREDICTIONS,
    TrialStatus,
)

__all__ = ["write_report", "FIGURES"]

FIGURES = ("confusion_best_member.png", "confusion_final_choice.png", "learning_curves.png",
           "search_history.png", "cv_spread.png")
_TOP = 8  # trials drawn in the learning curves and the CV spread


def _save(fig: Any, path: str) -> str:
    """Render ``fig`` as PNG and write it to ``path`` (a local path or URI) atomically."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    storage.write_bytes_atomic(buffer.getvalue(), path)
    return path.rsplit("/", 1)[-1]


def _figure(width: float = 6.4, height: float = 4.4) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


# ---- figures --------------------------------------------------------------------------------
def plot_confusion(y: np.ndarray, proba: np.ndarray, classes: Sequence[str], title: str, path: str) -> str:
    """Row-normalised confusion matrix of ``argmax(proba)`` [shape=(N, C)] against ``y``."""
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(y, proba.argmax(axis=1), labels=np.arange(len(classes)), normalize="true")
    cm = np.nan_to_num(cm)
    side = 2.5 + 0.5 * len(classes)
    fig = _figure(side + 1.0, side)
    ax = fig.subplots()
    image = ax.imshow(cm, vmin=0, vmax=1, cmap="Blues")
    ax.set(xticks=range(len(classes)), yticks=range(len(classes)), xticklabels=classes, yticklabels=classes,
           xlabel="predicted", ylabel="true", title=title)
    ax.tick_params(axis="x", labelrotation=45)
    if len(classes) <= 20:
        for i in range(len(classes)):
            for j in range(len(classes)):
                ax.text(j, i, f"{cm[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if cm[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return _save(fig, path)


def _mean_curve(histories: list[list[dict[str, Any]]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """Per epoch, the mean of ``key`` over the fits that ran that epoch and recorded it."""
    values: dict[int, list[float]] = {}
    for history in histories:
        for record in history:
            v = record.get(key)
            if v is not None and np.isfinite(v):
                values.setdefault(int(record["epoch"]), []).append(float(v))
    epochs = np.array(sorted(values))
    return epochs, np.array([np.mean(values[e]) for e in epochs])


def plot_learning_curves(curves: list[tuple[str, list[list[dict[str, Any]]]]], metric: str, path: str) -> str:
    """Training loss and, where early stopping ran, the inner split's ``metric`` per epoch,
    one line per trial (label, histories). The validation folds are scored once per fit, so
    they have no curve."""
    fig = _figure(10, 4)
    loss_ax, metric_ax = fig.subplots(1, 2)
    for label, histories in curves:
        for ax, key in ((loss_ax, "train_loss"), (metric_ax, f"inner_{metric}")):
            epochs, values = _mean_curve(histories, key)
            if len(epochs):
                ax.plot(epochs, values, marker="o" if len(epochs) == 1 else None, label=label)
    loss_ax.set(xlabel="epoch", ylabel="training loss", title="training loss (mean over CV fits)")
    metric_ax.set(xlabel="epoch", ylabel=f"inner-split {metric}",
                  title=f"early-stopping split {metric} (only with early stopping)")
    if metric_ax.get_legend_handles_labels()[0]:
        metric_ax.legend(fontsize=7)
    return _save(fig, path)


def plot_search_history(board: pd.DataFrame, order: Sequence[str], path: str) -> str:
    """The objective of each finished trial (in ``order``, the order they started) and the
    running best; failed and pruned trials (whose partial scores are not comparable) as crosses."""
    by_id = board.set_index("trial_id")
    ids = [t for t in order if t in by_id.index]
    objective = np.array([float(by_id.loc[t, "objective"]) for t in ids]) if ids else np.zeros(0)
    finished = np.array([by_id.loc[t, "status"] == TrialStatus.OK for t in ids], dtype=bool)
    objective = np.where(finished, objective, np.nan)
    ok = np.isfinite(objective)
    x = np.arange(1, len(ids) + 1)
    fig = _figure()
    ax = fig.subplots()
    ax.plot(x[ok], objective[ok], "o", label="trial")
    if ok.any():
        best = np.fmax.accumulate(np.where(ok, objective, -np.inf))
        shown = np.isfinite(best)
        ax.step(x[shown], best[shown], where="post", color="black", label="running best")
        if (~ok).any():
            ax.plot(x[~ok], np.full((~ok).sum(), np.nanmin(objective)), "x", color="red",
                    label="failed / pruned")
    ax.set(xlabel="trial (in start order)", ylabel="objective", title="search history")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_cv_spread(folds: pd.DataFrame, trials: Sequence[str], metric: str, path: str) -> str:
    """Every (seed, fold) value of ``metric`` per trial in ``trials``, coloured by seed; a
    black bar marks each trial's mean."""
    fig = _figure(max(5.0, 1.0 + 0.8 * len(trials)), 4.4)
    ax = fig.subplots()
    seeds = sorted(folds["seed"].unique()) if len(folds) else []
    colours = {s: f"C{i % 10}" for i, s in enumerate(seeds)}
    rng = np.random.default_rng(0)
    for i, tid in enumerate(trials):
        rows = folds[folds["trial_id"] == tid]
        for seed in seeds:
            values = rows.loc[rows["seed"] == seed, metric].to_numpy(dtype=float)
            ax.scatter(i + rng.uniform(-0.15, 0.15, len(values)), values, color=colours[seed], s=22,
                       label=f"seed {seed}" if i == 0 else None)
        if len(rows):
            ax.hlines(rows[metric].mean(), i - 0.3, i + 0.3, color="black")
    ax.set(xticks=range(len(trials)), xlabel="trial (best first)", ylabel=metric,
           title=f"{metric} per (seed, fold)")
    ax.set_xticklabels(trials, rotation=45, fontsize=8)
    if seeds:
        ax.legend(fontsize=8)
    return _save(fig, path)


# ---- tables ---------------------------------------------------------------------------------
def _md_table(frame: pd.DataFrame) -> str:
    """A markdown table (floats to 3 decimals)."""
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "" if np.isnan(v) else f"{v:.3f}"
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def per_class_table(y: np.ndarray, proba: np.ndarray, classes: Sequence[str]) -> pd.DataFrame:
    """Precision, recall, F1 and support per class of ``argmax(proba)`` [shape=(N, C)]."""
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, s = precision_recall_fscore_support(y, proba.argmax(axis=1), labels=np.arange(len(classes)),
                                                 zero_division=0)
    return pd.DataFrame({"class": list(classes), "precision": p.astype(float), "recall": r.astype(float),
                         "f1": f.astype(float), "support": s.astype(int)})


# ---- the report -----------------------------------------------------------------------------
def _start_order(exp: Experiment) -> list[str]:
    """Trial ids in the order they started (`Experiment.start_time`); trials without a
    start come last, in rank order."""
    starts = {tid: exp.start_time(tid) for tid in exp.board["trial_id"]}
    starts = {tid: start for tid, start in starts.items() if start is not None}
    ranked = list(exp.board.sort_values("rank")["trial_id"])
    return sorted(starts, key=lambda t: (starts[t], ranked.index(t))) + [t for t in ranked if t not in starts]


def _curves(exp: Experiment, trials: Sequence[str]) -> list[tuple[str, list]]:
    out = []
    for tid in trials:
        try:
            member = exp.member(exp.board[exp.board["trial_id"] == tid].iloc[0])
        except StoreError:
            continue
        out.append((f"{tid} ({member.model})", member.histories))
    return out


def _final_lines(exp: Experiment, metric: str) -> list[str]:
    """The final choice's one out-of-fold figure beside its test figure (``ensembles.csv``'s
    ``final`` row), and how many looks at the test split the ledger holds."""
    from results.looks import read_looks

    data = storage.read_bytes(storage.join(exp.path, ENSEMBLES_CSV))
    if data is None:
        return []
    table = pd.read_csv(io.BytesIO(data), dtype={"members": str})
    final = table[table["kind"] == "final"]
    unit = "group_" if f"oof_group_{metric}" in table else ""
    lines = []
    if len(final):
        row = final.iloc[0]
        lines += [f"Its one out-of-fold {metric} (the choice itself cross-fitted, not the best of several "
                  f"figures): **{row[f'oof_{unit}{metric}']:.3f}**; on test: **{row[f'test_{unit}{metric}']:.3f}**.", ""]
    looks = read_looks(exp.path)
    if len(looks):
        lines += [f"The test split has been scored in {int(looks['run'].max())} run(s), {len(looks)} looks in all "
                  "(`test_looks.csv`).", ""]
    return lines


def write_report(experiment_dir: str) -> str:
    """Write the figures and ``report.md`` into ``<experiment_dir>/report/``; returns the
    path of ``report.md``."""
    exp = load_experiment(experiment_dir)
    out = storage.join(exp.path, REPORT_DIR)
    metric = exp.metric
    ok = exp.ok_trials()
    top = list(ok["trial_id"].head(_TOP))
    spec = exp.spec
    counts = exp.board["status"].value_counts().to_dict()
    md = [f"# Sweep `{spec.name}`", "",
          f"{spec.dataset}/{spec.feature_set}, scored by {metric} ({spec.cv.seeds} seeds x {spec.cv.folds} folds, "
          f"objective {spec.objective.type}); {len(exp.board)} trials: "
          + ", ".join(f"{n} {s}" for s, n in counts.items()) + ".", ""]

    ens_dir = storage.join(exp.path, ENSEMBLE_DIR)
    preds, info_bytes = (storage.read_bytes(storage.join(ens_dir, name))
                         for name in (TEST_PREDICTIONS, ENSEMBLE_JSON))
    if preds is not None and info_bytes is not None:
        info = json.loads(info_bytes)
        with np.load(io.BytesIO(preds), allow_pickle=False) as data:
            y, classes = data["y"], [str(c) for c in data["classes"]]
            member_ids = [str(t) for t in data["member_ids"]]
            methods = [str(m) for m in data["methods"]]
            member_proba, ensemble_proba = data["member_proba"], data["ensemble_proba"]
        best_member = info["best"]["member"]
        best_method = info["best"].get("final") or info["best"]["ensemble"]
        mp = member_proba[member_ids.index(best_member)]
        ep = ensemble_proba[methods.index(best_method)]
        md += ["## Test split", "",
               f"Best member: trial `{best_member}` (rank 1 by the CV objective, the best of {len(exp.ok_trials())} "
               f"finished trials). Final choice, what `predict` runs: `{best_method}` (the best cross-fitted "
               f"out-of-fold {metric} among the rank-1 member and every ensemble). Neither was chosen by its test "
               "score.", ""]
        md += _final_lines(exp, metric)
        if len(y):
            plot_confusion(y, mp, classes, f"best member {best_member}: test", storage.join(out, FIGURES[0]))
            plot_confusion(y, ep, classes, f"final choice {best_method}: test", storage.join(out, FIGURES[1]))
            md += [f"![confusion matrix, best member]({FIGURES[0]})",
                   f"![confusion matrix, final choice]({FIGURES[1]})", "",
                   f"### Per class, best member `{best_member}` on test", "",
                   _md_table(per_class_table(y, mp, classes)), "",
                   f"### Per class, final choice `{best_method}` on test", "",
                   _md_table(per_class_table(y, ep, classes)), ""]
        else:
            md += ["The test split is empty: no confusion matrices.", ""]
        table = storage.read_bytes(storage.join(exp.path, ENSEMBLES_CSV))
        if table is not None:
            md += [f"### Members and ensembles (`{ENSEMBLES_CSV}`)", "",
                   _md_table(pd.read_csv(io.BytesIO(table), dtype={"members": str})), ""]
    else:
        md += ["No ensemble yet: run `seqsweep results ensemble DIR` for the test-split confusion "
               "matrices and per-class tables.", ""]

    plot_learning_curves(_curves(exp, top), metric, storage.join(out, FIGURES[2]))
    plot_search_history(exp.board, _start_order(exp), storage.join(out, FIGURES[3]))
    folds = exp.folds()
    plot_cv_spread(folds[folds["trial_id"].isin(top)] if metric in folds else folds.iloc[0:0], top,
                   metric if metric in folds else "balanced_accuracy", storage.join(out, FIGURES[4]))
    cols = [c for c in ["rank", "trial_id", "model", "objective", f"{metric}_mean", f"{metric}_std",
                        f"{metric}_min", "n_params", "fit_seconds_mean", "predict_seconds_per_1000"] if c in ok]
    md += ["## Cross-validation", "", f"### Top {min(_TOP, len(ok))} trials", "",
           _md_table(ok[cols].head(_TOP)) if len(ok) else "No trial finished ok.", "",
           f"![learning curves]({FIGURES[2]})", "", f"![search history]({FIGURES[3]})", "",
           f"![CV spread]({FIGURES[4]})", ""]
    path = storage.join(out, REPORT_FILE)
    storage.write_bytes_atomic("\n".join(md).encode(), path)
    return path
