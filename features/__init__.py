"""Audio and sequence sources -> feature extraction -> the Parquet feature store -> loaders.

The first room of seqsweep: it imports none of the others. The store, the runner and
their pyarrow / pandas / scikit-learn load on first use, so an extraction worker that only
needs `features.worker` starts light.
"""

from features.errors import ConfigError, InputError, SeqsweepError, StoreError, TrainingError
from features.lazy import lazy_exports
from features.sequences import SequenceSet, pad_sequences

__all__ = [
    "FEATURE_KINDS",
    "ConfigError",
    "ExtractionSummary",
    "FeatureSpec",
    "FeatureStore",
    "InputError",
    "SeqsweepError",
    "SequenceSet",
    "StoreError",
    "TrainingError",
    "compute_features",
    "extract_audio",
    "extract_clip",
    "import_files",
    "pad_sequences",
]

_LAZY = {
    "FEATURE_KINDS": "features.extract",
    "FeatureSpec": "features.extract",
    "compute_features": "features.extract",
    "ExtractionSummary": "features.runner",
    "extract_audio": "features.runner",
    "import_files": "features.runner",
    "extract_clip": "features.worker",
    "FeatureStore": "features.store",
}

__getattr__, __dir__ = lazy_exports("features", _LAZY, globals())
