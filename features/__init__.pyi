"""The public names of `features`, each loaded on first use (`lazy_loader.attach_stub`)."""

from .extract import (
    FEATURE_KINDS as FEATURE_KINDS,
    FeatureSpec as FeatureSpec,
    compute_features as compute_features,
)
from .incremental import (
    ExtractionSummary as ExtractionSummary,
)
from .runner import (
    extract_audio as extract_audio,
)
from .sequence_import import (
    import_files as import_files,
)
from .sequences import (
    SequenceSet as SequenceSet,
    pad_sequences as pad_sequences,
)
from .store import (
    FeatureStore as FeatureStore,
)
from .worker import (
    extract_clip as extract_clip,
)
