"""Audio and sequence sources -> feature extraction -> the Parquet feature store -> loaders.

The first room of seqsweep: it imports none of the others. The store, the runner and
their pyarrow / pandas / scikit-learn load on first use, so an extraction worker that only
needs `features.worker` starts light.
"""

import lazy_loader

# the names and where they live: __init__.pyi (read by type checkers too)
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
