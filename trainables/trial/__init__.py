"""The Ray Tune trial and its fold plan.

`cv_trial` (`.run`) scores one configuration on every (seed, fold) of the sweep's
`CVPlan` (`.folds`, made once by the driver with `make_plan`) and reports to Tune.
"""

import lazy_loader

# each name is loaded from its module on first use (like the package's own face)
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "run": ["TrialSetup", "cv_trial", "flat_config"],
        "folds": ["CVFit", "CVPlan", "make_plan", "plan_fingerprint", "fingerprint_changes"],
    },
)
