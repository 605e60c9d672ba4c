"""The `seqsweep` command: each room's command group under one root.

A group is imported when its name is typed (like Ray Tune's search-algorithm registry,
a name mapped to an import function), so ``seqsweep --help`` answers at once. This is the
one module that puts the rooms together: it may import every room, and it hands the
sweep group the results room's spec reader (which checks the ``ensemble`` section) and
finishing step, which the search room never imports.

The project's errors become exit messages here, once: a command raises `SeqsweepError`
and the root prints ``Error: <where>: <rule> (got <value>)`` and exits with status 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from seqsweep.errors import SeqsweepError

__all__ = ["main", "COMMANDS"]


def _finish_sweep(experiment_dir: str, *, echo: Callable[[str], None]) -> object:
    """What `seqsweep sweep run` does after a sweep: ensembles, test scores and the report."""
    from results.pipeline import finish_sweep

    return finish_sweep(experiment_dir, echo=echo)


def _read_spec(path: str, **overrides: Any) -> object:
    """What `seqsweep sweep run` reads: the spec with every section checked, the results
    room's ``ensemble`` included, before any trial runs."""
    from results.ensemble.spec import load_spec

    return load_spec(path, **overrides)


def _import_demo() -> click.Command:
    from seqsweep.demo import demo

    return demo


def _import_features() -> click.Command:
    from features.cli import features

    return features


def _import_sweep() -> click.Command:
    from search.commands import sweep_group

    return sweep_group(finish=_finish_sweep, read_spec=_read_spec)


def _import_results() -> click.Command:
    from results.cli import results

    return results


def _import_predict() -> click.Command:
    from results.cli import predict

    return predict


#: command name -> (import function of its click command or group, one line for the listing)
COMMANDS: dict[str, tuple[Callable[[], click.Command], str]] = {
    "demo": (_import_demo, "Run everything end to end on synthetic audio (1.5 to 2 minutes on 2 cores)."),
    "features": (_import_features, "Build and inspect the Parquet feature store."),
    "sweep": (_import_sweep, "Run a sweep from a YAML spec; see how one is doing."),
    "results": (_import_results, "Leaderboards, ensembles and reports of a finished sweep."),
    "predict": (_import_predict, "Predict the class of new audio with a sweep's saved ensemble."),
}


class _Root(click.Group):
    """Loads a command on first use; turns a `SeqsweepError` from any command into an exit message."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        return COMMANDS[name][0]()

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SeqsweepError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Root, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="seqsweep")
def main() -> None:
    """seqsweep: find the best sequence classifier for labelled audio or sequences,
    and show that the winner is real (repeated-seed cross-validation, ensembles).

    \b
    Try it:  seqsweep demo

    \b
    Typical flow:
      seqsweep features synth data/               # or use your own class folders
      seqsweep features extract data/ --store store --dataset demo
      seqsweep features info --store store
      seqsweep sweep run examples/quick.yaml      # Ray Tune + Optuna + repeated-seed CV
      seqsweep sweep status runs/quick
    """
