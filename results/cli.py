"""``seqsweep results ...`` (ensemble, report, leaderboard) and ``seqsweep predict``."""

from __future__ import annotations

import click

from results.ensemble import DEFAULT_METHODS, FIT_WEIGHTS_METHODS, FORMS, REGISTRY
from seqsweep.errors import SeqsweepError

__all__ = ["results", "predict"]

#: An experiment folder: a local path or a URI Ray Tune stored it at (file://, s3://, gs://);
#: the commands check it exists and name what is missing.
_DIR = click.STRING

#: What each ensemble method does, for ``--help``.
_METHODS_HELP = ", ".join(f"{name} ({m.note})" for name, m in REGISTRY.items())
#: the methods built only when asked for (``ensemble.fit_weights``)
_IF_BUILT = ", ".join(FIT_WEIGHTS_METHODS)


@click.group()
def results() -> None:
    """Leaderboards, ensembles and reports of a finished sweep.

    DIR is a sweep's experiment folder, <storage>/<name> (e.g. runs/quick).
    """


@results.command()
@click.argument("directory", metavar="DIR", type=_DIR)
@click.option("--top-k", type=click.IntRange(min=1), default=None,
              help="Ensemble the K best trials with status ok (default: the spec's ensemble.top_k, else 5).")
@click.option("--methods", default=None, metavar="LIST",
              help=f"Comma-separated among {_METHODS_HELP}. Default: the spec's.")
@click.option("--fit-weights/--no-fit-weights", default=None,
              help=f"Also build {_IF_BUILT} (default: the spec's ensemble.fit_weights).")
@click.option("--refit", type=click.Choice(list(FORMS)), default=None,
              help="How a member is deployed: bag = its CV fold models, averaged (what its out-of-fold "
                   "estimate describes; no training); full = refit on the whole train split with its CV "
                   "seeds. Default: the spec's ensemble.refit, else bag.")
@click.option("--max-size", type=click.IntRange(min=1), default=None,
              help="weighted: at most this many greedy picks from every finished trial (default: the spec's "
                   "ensemble.max_size, else 25).")
@click.option("--no-report", is_flag=True, help="Skip the report.")
def ensemble(directory: str, top_k: int | None, methods: str | None, fit_weights: bool | None,
             refit: str | None, max_size: int | None, no_report: bool) -> None:
    """Rebuild the ensembles and the final choice of the finished sweep in DIR.

    The candidates are the rank-1 member and each method; each gets an out-of-fold
    estimate from the trials' saved out-of-fold probabilities, cross-fitted: its members
    (the top K, or greedy's picks from every finished trial) and weights are chosen on
    other rows than the ones each estimate is scored on. The final choice is the best
    candidate, and its one out-of-fold figure is cross-fitted over that choice too. Each
    member is deployed (its bag of CV fold models, or a full refit) and every member and
    candidate is scored once on the held-out test split; every figure is recorded in
    DIR/test_looks.csv, and a rerun says how many looks came before. Writes
    DIR/ensembles.csv (an earlier one is kept as DIR/ensembles_run<n>.csv), the saved
    choice DIR/ensemble/ (for `seqsweep predict`) and the report DIR/report/.
    """
    from results.pipeline import finish_sweep

    summary = finish_sweep(directory, top_k=top_k, methods=methods, fit_weights=fit_weights,
                           refit=refit, max_size=max_size, report=not no_report, echo=click.echo)
    click.echo(str(summary))


@results.command()
@click.argument("directory", metavar="DIR", type=_DIR)
def report(directory: str) -> None:
    """Write the report of the sweep in DIR to DIR/report/: report.md and PNGs (test-split
    confusion matrices of the best member and ensemble, learning curves, search history,
    CV spread per top trial). The confusion matrices need `seqsweep results ensemble DIR`."""
    from results.report import write_report

    path = write_report(directory)
    click.echo(f"report: {path}")


@results.command()
@click.argument("directory", metavar="DIR", type=_DIR)
@click.option("--top", "top", type=click.IntRange(min=1), default=10, show_default=True,
              help="Show the N best trials.")
@click.option("--all", "show_all", is_flag=True, help="Show every trial.")
@click.option("--pareto", is_flag=True,
              help="Only the finished trials on the frontier of CV objective against prediction seconds "
                   "per 1,000 clips (no other trial is both as good and as fast, and better at one).")
def leaderboard(directory: str, top: int, show_all: bool, pareto: bool) -> None:
    """Print the leaderboard of the sweep in DIR (DIR/leaderboard.csv), best first."""
    from results.leaderboard import format_leaderboard, load_leaderboard
    from search.spec import SweepSpec

    board = load_leaderboard(directory)
    try:
        metric = SweepSpec.load(directory).metric
    except SeqsweepError:  # no sweep.json, or one that no longer checks
        metric = "balanced_accuracy"
    click.echo(format_leaderboard(board, top=None if show_all else top, metric=metric, pareto=pareto))


@click.command()
@click.argument("directory", metavar="DIR", type=_DIR)
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True)
@click.option("--method", default=None,
              help=f"Which saved candidate predicts: best_member (the rank-1 trial alone), "
                   f"{', '.join(DEFAULT_METHODS)} (or {_IF_BUILT} if built). Default: the final choice "
                   "(ensembles.csv's final row; the summary names it).")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write the predictions as CSV here (default: print them).")
def predict(directory: str, inputs: tuple[str, ...], method: str | None, out: str | None) -> None:
    """Predict the class of new audio with the saved ensemble of the sweep in DIR.

    INPUT is an audio file or a folder (searched recursively for audio files). The same
    features the sweep used are extracted from each file; the output has one row per
    file: path, predicted class, prob_<class> per class, and error (a file that fails is
    reported there and the others are predicted). Run `seqsweep results ensemble DIR`
    first if the sweep was run with --no-ensemble.
    """
    from results.predict import predict as run_predict

    frame = run_predict(directory, list(inputs), method=method, out=out)
    failed = int((frame["error"] != "").sum())
    if out is None:
        click.echo(frame.to_csv(index=False), nl=False)
    else:
        click.echo(f"wrote {len(frame)} predictions to {out}")
    if failed:
        click.echo(f"{failed} of {len(frame)} files failed:", err=True)
        for _, row in frame[frame["error"] != ""].iterrows():
            click.echo(f"  {row['path']}: {row['error']}", err=True)
