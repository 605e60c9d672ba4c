"""Audio and sequence sources -> feature extraction -> the Parquet feature store -> loaders.

The first room of seqsweep: it imports none of the others.
"""

from features.errors import ConfigError, InputError, SeqsweepError, StoreError, TrainingError
from features.extract import FEATURE_KINDS, FeatureSpec, compute_features
from features.runner import ExtractionSummary, extract_audio, extract_clip, import_files
from features.sequences import SequenceSet, pad_sequences
from features.store import FeatureStore

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
