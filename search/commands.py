"""`seqsweep sweep ...`: run, resume and inspect sweeps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

__all__ = ["sweep_group"]

#: What runs after a sweep that ended ok: ``finish(experiment_dir, echo=...)`` returns what to
#: print. The command line passes the results room's ensembles and report; this room never
#: imports that later room.
FinishSweep = Callable[..., object]
#: How ``sweep run`` reads its YAML: ``read(path, **overrides)`` returns the checked spec
#: (`search.spec.load_spec` by default). The command line passes the results room's reader,
#: which checks the ``ensemble`` section too, before any trial runs.
ReadSpec = Callable[..., Any]


@click.command()
@click.argument("directory")
@click.option("--watch", is_flag=True,
              help="Redraw every --interval seconds until the sweep ends (Ctrl-C stops watching).")
@click.option("--interval", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds between two frames of --watch.")
def status(directory: str, watch: bool, interval: float) -> None:
    """How far the sweep in the experiment DIRECTORY (a path, or a URI such as
    s3://bucket/runs/quick) is: fits done of planned, trials by status, time elapsed and
    left, the top trials and the last failures."""
    from search import status as sweep_status

    if watch:
        sweep_status.watch(directory, interval=interval, echo=lambda text: click.echo(text, nl=False))
    else:
        click.echo(sweep_status.sweep_status(directory))


def sweep_group(finish: FinishSweep, read_spec: ReadSpec | None = None) -> click.Group:
    """The ``sweep`` command group, whose ``run`` reads its YAML with ``read_spec`` and calls
    ``finish`` at the end (unless ``--no-ensemble``)."""

    @click.group()
    def sweep() -> None:
        """Run a sweep from a YAML spec; see how one is doing."""

    @sweep.command()
    @click.argument("config", type=click.Path(exists=True, dir_okay=False))
    @click.option("--resume", is_flag=True, help="Continue the sweep of this name whose driver stopped.")
    @click.option("--address", default=None, help="Ray cluster to run on (default: $RAY_ADDRESS, else a local Ray).")
    @click.option("--dashboard-host", default="127.0.0.1", show_default=True,
                  help="Where a local Ray's dashboard listens; 0.0.0.0 exposes it to the network.")
    @click.option("--store", default=None, help="Override the spec's feature store root.")
    @click.option("--dataset", default=None, help="Override the spec's dataset.")
    @click.option("--feature-set", default=None, help="Override the spec's feature set.")
    @click.option("--num-samples", type=int, default=None, help="Override search.num_samples (trials).")
    @click.option("--storage", default=None, help="Override where experiments are written (a path or URI).")
    @click.option("--name", default=None, help="Override the experiment's name.")
    @click.option("--no-ensemble", is_flag=True,
                  help="Skip the ensembles, the test scoring and the report at the end.")
    def run(config: str, resume: bool, address: str | None, dashboard_host: str, store: str | None,
            dataset: str | None, feature_set: str | None, num_samples: int | None, storage: str | None,
            name: str | None, no_ensemble: bool) -> None:
        """Run the sweep CONFIG describes: Optuna samples configurations, Ray Tune runs them,
        each scored by repeated-seed cross-validation on the train split.

        Writes <storage>/<name>/leaderboard.csv and leaderboard_folds.csv as trials finish;
        at the end builds the ensembles of the top trials, deploys each member (its bag of CV
        fold models by default), scores them once on the held-out test split (ensembles.csv)
        and writes the report.
        """
        from search.spec import load_spec
        from search.sweep import run_sweep

        read = read_spec or load_spec
        spec = read(config, store=store, dataset=dataset, feature_set=feature_set, num_samples=num_samples,
                    storage=storage, name=name)
        outcome = run_sweep(spec, resume=resume, address=address, dashboard_host=dashboard_host,
                            echo=click.echo)
        click.echo(str(outcome))
        if not no_ensemble and outcome.ok:
            click.echo(str(finish(outcome.experiment_dir, echo=click.echo)))

    sweep.add_command(status)
    return sweep
