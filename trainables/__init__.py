"""Models, one training loop, and the fit that a Ray Tune trial runs once per (seed, fold).

The groups:

* `trainables.networks`: the torch models (lstm, cnn, cnn1d, wavenet, inception_time) and
  their shared masked layers;
* `trainables.classic`: KNN / random forest on pooled frames, and the ROCKET families;
* `trainables.training`: the fit: one loop for any family, its batches, inner split,
  prediction, saved weights, result and metrics;
* `trainables.fused`: many configurations' fits trained as one network;
* `trainables.trial`: the Ray Tune trial and its fold plan;
* at the top: the typed configs (`configs`, `config_base`), the registry of families
  (`registry`), the settings a trial used (`settings`), seeds and devices (`environment`)
  and the contract every model passes (`testing`).

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
