"""Sweeps: a YAML spec becomes a Ray Tune experiment whose trials Optuna samples and
repeated-seed cross-validation scores.

The third room: it imports `features` and `trainables`, never `results`. The spec is read
once into frozen config (`search.spec`, its sections `search.section` and the model
families' ranges `search.ranges`); `search.space` turns it into the Optuna search space
and `search.searcher` into the searcher Ray Tune drives; `search.sweep` runs the Tuner,
with the live leaderboard (`search.leaderboard`, its table `search.ranking`), the sweep's
metrics (`search.metrics`) and fold-paired pruning (`search.wilcoxon`) as its callbacks
and scheduler; `search.status` reads a sweep's progress back. `search.commands` is the
``seqsweep sweep`` command group, which the roof (`seqsweep.cli`) mounts with the results
room's finishing step (the whole command is ``seqsweep`` or ``python -m seqsweep``).
Nothing is imported from here by name: each module is imported where it is used."""

__all__: list[str] = []
