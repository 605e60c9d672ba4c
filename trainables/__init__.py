"""Models, one training loop, and the fit that a Ray Tune trial runs once per (seed, fold).

The public face::

    from trainables import split_flat_config, fit

    name, model_config, train_config = split_flat_config(tune_config, ignore=("seeds", "folds"))
    result = fit(name, model_config, train, valid, seed=seed, train_config=train_config,
                 on_epoch=lambda record: ...)          # FitResult; raises TrainingError on NaN/OOM
    result.metrics["balanced_accuracy"], result.proba  # validation metrics and probabilities

Configs and the registry import no torch; `fit`, `predict_proba` and the model modules load
torch / scikit-learn on first use.
"""

import lazy_loader

# the names and where they live: __init__.pyi (read by type checkers too)
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
