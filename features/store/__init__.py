"""The Parquet feature store: where extracted and imported sequences live.

Layout under a root (a local path, or any URI `pyarrow.fs` opens: ``s3://``, ``gs://``)::

    <root>/<dataset>/_splits.parquet                 group -> train/test, made once
    <root>/<dataset>/<feature_set>/_manifest.json    the commit point (see below)
    <root>/<dataset>/<feature_set>/_errors.parquet   files that failed, with stage and message
    <root>/<dataset>/<feature_set>/part-*.parquet    rows, one per clip

Rows: ``clip_id, group, label, split, n_frames, features`` where ``features`` is
``list<fixed_size_list<float32, D>>`` (T frames of D values), plus the source's
fingerprint (``source, source_size, source_mtime_ns, source_hash``) that makes
re-extraction incremental.

A token feature set (imported chord ids and the like, `features.tokens`) stores dense ids
in ``features`` and its vocabulary in the manifest (``tokens``: ``vocab_size``,
``unknown_id``, ``id_to_value``); `FeatureStore.load` sets ``SequenceSet.vocab_size``.

Every file is written under a temporary name and renamed into place. The manifest
lists the part files that hold data: a reader reads only those, so a part written by
an extraction killed before its manifest was renamed is never taken as data (and is
removed by the next writer).

The package: `schema` (file names, Arrow schemas, packing), `reader` (`FeatureStore`),
`writer` (`FeatureSetWriter`).
"""

from features.rows import SourceRows
from features.store.reader import FeatureStore
from features.store.schema import ERRORS, MANIFEST, SPLITS, row_schema
from features.store.writer import FeatureSetWriter

__all__ = ["FeatureStore", "FeatureSetWriter", "SourceRows", "row_schema", "MANIFEST", "ERRORS", "SPLITS"]
