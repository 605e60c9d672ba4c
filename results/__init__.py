"""What users read after a sweep and use afterwards: the leaderboard, ensembles of the top
trials (refit and scored once on the held-out test split), the report, and prediction on
new audio.

The last room: it imports `features`, `trainables` and `search`; none of them imports it
(``seqsweep sweep run`` calls `finish_sweep` by its dotted name). The public face::

    from results import finish_sweep, predict, load_leaderboard, format_leaderboard

    summary = finish_sweep("runs/quick")        # ensembles.csv, ensemble/, report/
    frame = predict("runs/quick", ["new_audio/"], method="weighted")

Submodules load torch, scikit-learn and matplotlib only when used.
"""

from __future__ import annotations

from features.lazy import lazy_exports

__all__ = [
    # leaderboard
    "load_leaderboard",
    "format_leaderboard",
    # experiment folders
    "Experiment",
    "Member",
    "load_experiment",
    # ensemble maths
    "METHODS",
    "average_seeds",
    "soft_vote",
    "max_blend",
    "hard_vote",
    "greedy_selection",
    "fit_logloss_weights",
    "combine",
    "cross_fit",
    "per_group",
    "score",
    # deployed members (bag of fold models, or refit) and test scoring
    "DeployedMember",
    "bag_member",
    "refit_member",
    "score_on_test",
    "score_test",
    # the pipeline after a sweep
    "EnsembleDef",
    "FinishSummary",
    "build_ensembles",
    "finish_sweep",
    # report and prediction
    "write_report",
    "predict",
    "load_ensemble",
    "SavedEnsemble",
]

_LAZY = {
    "load_leaderboard": "results.leaderboard",
    "format_leaderboard": "results.leaderboard",
    "Experiment": "results.experiment",
    "Member": "results.experiment",
    "load_experiment": "results.experiment",
    "METHODS": "results.ensemble",
    "average_seeds": "results.ensemble",
    "soft_vote": "results.ensemble",
    "max_blend": "results.ensemble",
    "hard_vote": "results.ensemble",
    "greedy_selection": "results.ensemble",
    "fit_logloss_weights": "results.ensemble",
    "combine": "results.ensemble",
    "cross_fit": "results.ensemble",
    "per_group": "results.ensemble",
    "score": "results.ensemble",
    "DeployedMember": "results.deploy",
    "bag_member": "results.deploy",
    "refit_member": "results.deploy",
    "score_on_test": "results.deploy",
    "score_test": "results.deploy",
    "EnsembleDef": "results.pipeline",
    "FinishSummary": "results.pipeline",
    "build_ensembles": "results.pipeline",
    "finish_sweep": "results.pipeline",
    "write_report": "results.report",
    "predict": "results.predict",
    "load_ensemble": "results.predict",
    "SavedEnsemble": "results.predict",
}


__getattr__, __dir__ = lazy_exports("results", _LAZY, globals())
