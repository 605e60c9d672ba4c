"""Every file and folder of an experiment, named once (Ray keeps its own in
``ray/air/constants.py`` the same way).

An experiment folder is ``<storage>/<name>/``, a local path or a URI; search writes it
during the sweep, results adds the ensembles and the report after it::

    sweep.json                  the sweep spec as run (search.spec.SweepSpec.save)
    plan.json                   the fold plan's fingerprint: a resume must score on the same folds
    optuna.log                  the Optuna study (JournalStorage), for optuna-dashboard
    leaderboard.csv             one row per trial, written as trials finish
    leaderboard_folds.csv       one row per (trial, seed, fold)
    <trial folder>/oof.npz      the trial's out-of-fold probabilities
    <trial folder>/fits.json    each fit's epochs and scores
    <trial folder>/fold_models/ each fit's weights (no pickles)
    ensembles.csv               every member, ensemble and the final choice: out-of-fold and test figures
    ensembles_run<n>.csv        an earlier run's ensembles.csv, kept when the ensembles are rebuilt
    test_looks.csv              every scoring of the test split: when, command, settings, what, figure
    ensemble/ensemble.json      the saved ensembles that `predict` loads
    ensemble/test_predictions.npz
    report/                     report.md and its plots
"""

from __future__ import annotations

SPEC_FILE = "sweep.json"
PLAN_FILE = "plan.json"
OPTUNA_LOG = "optuna.log"
LEADERBOARD = "leaderboard.csv"
FOLDS = "leaderboard_folds.csv"
OOF_FILE = "oof.npz"
FITS_FILE = "fits.json"
FOLD_MODELS = "fold_models"
ENSEMBLES_CSV = "ensembles.csv"
ENSEMBLES_RUN = "ensembles_run{run}.csv"  # .format(run=n): the ensembles.csv of run n, kept
TEST_LOOKS = "test_looks.csv"
ENSEMBLE_DIR = "ensemble"
ENSEMBLE_JSON = "ensemble.json"
TEST_PREDICTIONS = "test_predictions.npz"
REPORT_DIR = "report"
REPORT_FILE = "report.md"
