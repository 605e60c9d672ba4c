"""Sweeps: a YAML spec becomes a Ray Tune experiment whose trials Optuna samples and
repeated-seed cross-validation scores. The `seqsweep` command line lives here too."""

__all__: list[str] = []
