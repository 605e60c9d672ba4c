"""The classic families: KNN and random forest on pooled frames (`.pooled`), and the
ROCKET families (MiniRocket, MultiRocket-Hydra) through aeon (`.rocket`).
"""

import lazy_loader

# each name is loaded from its module on first use (like the package's own face)
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "pooled": ["PooledClassifier", "pooled_features", "bag_features", "build_knn", "build_random_forest"],
        "rocket": ["RocketClassifier", "build_minirocket", "build_multirocket_hydra"],
    },
)
