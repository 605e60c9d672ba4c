"""The fused path: several configurations' fits of one family trained as one network.

`fit_many` fuses what it can (`use_fused` says when that pays) and fits the rest one
by one with `trainables.fit`; the replica layers, the fused LSTM, the per-replica
optimiser and the fused loop are private modules here.
"""

import lazy_loader

# each name is loaded from its module on first use (like the package's own face)
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "many": ["fit_many", "use_fused", "unfusable_reason", "step_flops"],
    },
)
