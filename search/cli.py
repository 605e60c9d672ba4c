"""The `seqsweep` command: one group per room, loaded when its name is typed.

Subcommand groups are imported lazily (like Ray Tune's search-algorithm registry) so
`seqsweep --help` answers at once and a later room's CLI may be added without this
module importing it at load time.
"""

from __future__ import annotations

import importlib

import click

#: command name -> "module:attribute" of its click command or group
SUBCOMMANDS = {
    "demo": ("results.demo:demo", "Run everything end to end on synthetic audio (about 2 minutes on 2 cores)."),
    "features": ("features.cli:features", "Build and inspect the Parquet feature store."),
    "sweep": ("search.commands:sweep", "Run a sweep from a YAML spec; see how one is doing."),
    "results": ("results.cli:results", "Leaderboards, ensembles and reports of a finished sweep."),
    "predict": ("results.cli:predict", "Predict the class of new audio with a sweep's saved ensemble."),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in SUBCOMMANDS:
            return None
        module, _, attr = SUBCOMMANDS[name][0].partition(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUBCOMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
