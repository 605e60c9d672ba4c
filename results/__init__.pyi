"""The public names of `results`, each loaded on first use (`lazy_loader.attach_stub`)."""

from .build import (
    EnsembleDef as EnsembleDef,
    build_ensembles as build_ensembles,
)
from .choice import (
    FinalChoice as FinalChoice,
    final_choice as final_choice,
)
from .deploy import (
    DeployedMember as DeployedMember,
    bag_member as bag_member,
    refit_member as refit_member,
    score_on_test as score_on_test,
    score_test as score_test,
)
from .ensemble import (
    METHODS as METHODS,
    REGISTRY as REGISTRY,
    average_seeds as average_seeds,
    combine as combine,
    cross_fit as cross_fit,
    fit_logloss_weights as fit_logloss_weights,
    greedy_selection as greedy_selection,
    hard_vote as hard_vote,
    max_blend as max_blend,
    per_group as per_group,
    score as score,
    soft_vote as soft_vote,
)
from .ensemble.spec import (
    EnsembleSpec as EnsembleSpec,
    ResultsSpec as ResultsSpec,
)
from .experiment import (
    Experiment as Experiment,
    Member as Member,
    load_experiment as load_experiment,
)
from .leaderboard import (
    format_leaderboard as format_leaderboard,
    load_leaderboard as load_leaderboard,
)
from .looks import (
    read_looks as read_looks,
)
from .pipeline import (
    finish_sweep as finish_sweep,
)
from .predict import (
    SavedEnsemble as SavedEnsemble,
    load_ensemble as load_ensemble,
    predict as predict,
)
from .report import (
    write_report as write_report,
)
from .summary import (
    FinishSummary as FinishSummary,
)
