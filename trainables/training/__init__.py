"""The fit: one training loop for any family, and what it is made of.

`fit` checks the inputs (`.inputs`), seeds and picks the device, then runs the torch
loop (`.fit_torch`: length-bucketed padded batches, an inner early-stopping split) or a
classic family's one-shot fit (`.fit_classic`), and returns a `FitResult` (`.result`)
with the validation metrics (`.metrics`) and probabilities (`.predict`). `.saved` turns
a fitted model's weights into bytes and back.
"""

import lazy_loader

# each name is loaded from its module on first use (like the package's own face)
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "loop": ["fit"],
        "predict": ["predict_proba"],
        "result": ["EpochCallback", "FitResult"],
        "metrics": ["METRICS", "SCALAR_METRICS", "classification_metrics", "metric_score"],
        "batching": ["bucket_batches"],
        "inner": ["inner_split"],
        "saved": ["weights_to_bytes", "weights_from_bytes"],
    },
)
