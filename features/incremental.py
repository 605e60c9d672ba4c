"""What both ways of filling the store share: the summary a run returns, and the plan
that makes a rerun cheap.

`features.runner.extract_audio` and `features.sequence_import.import_files` both skip a
source whose fingerprint (size, mtime, sha256) matches the one stored beside its rows,
and both give every new group a train/test split once (`splits_for`), so a group never
changes side between runs.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from features.rows import ItemError
from features.splits import assign_test_split
from features.store import FeatureStore
from seqsweep.errors import ConfigError

__all__ = ["ExtractionSummary", "check_fraction", "file_sha256", "is_unchanged", "splits_for"]


@dataclass
class ExtractionSummary:
    """What one `extract_audio` / `import_files` call did."""

    store: str
    dataset: str
    feature_set: str
    sources: int = 0  # sources found
    unchanged: int = 0  # skipped: same bytes, same parameters
    added: int = 0  # sources extracted or imported in this run
    failed: int = 0
    clips_total: int = 0  # rows in the feature set after the run
    seconds: float = 0.0
    errors: list[ItemError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # facts worth a line (an import's vocabulary)

    def __str__(self) -> str:
        text = (f"{self.dataset}/{self.feature_set}: {self.sources} sources, {self.added} extracted, "
                f"{self.unchanged} unchanged, {self.failed} failed; {self.clips_total} clips in the store "
                f"({self.seconds:.1f} s)")
        text += "".join(f"\n{note}" for note in self.notes)
        if self.errors:
            shown = "\n".join(f"  {e.path} [{e.stage}] {e.error_type}: {e.message}" for e in self.errors[:10])
            more = f"\n  ... and {len(self.errors) - 10} more" if len(self.errors) > 10 else ""
            text += f"\nfailed (see {self.feature_set}/_errors.parquet):\n{shown}{more}"
        return text


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_unchanged(path: str, st: os.stat_result, known: tuple[int, int, str] | None) -> bool:
    """Same size and mtime as stored, or (when those moved) the same bytes."""
    if known is None:
        return False
    if (st.st_size, st.st_mtime_ns) == known[:2]:
        return True
    return st.st_size == known[0] and file_sha256(path) == known[2]


def splits_for(store: FeatureStore, dataset: str, entries: Iterable[tuple[str, str, str | None]],
                *, test_size: float, seed: int) -> dict[str, str]:
    """group -> split for every (group, label, own split) given; records new groups.

    A split the source names (a manifest column, a TRAIN/TEST file) wins; otherwise a
    group keeps the split it was first given; new groups are split stratified by label.
    """
    existing = store.splits(dataset)
    own: dict[str, tuple[str, str]] = {}
    fresh: dict[str, str] = {}
    for group, label, split in entries:
        if split is not None:
            if existing.get(group) != split:
                own[group] = (label, split)
        elif group not in existing:
            fresh.setdefault(group, label)
    assigned = assign_test_split(fresh, test_size=test_size, seed=seed)
    record = {**own, **{g: (fresh[g], s) for g, s in assigned.items()}}
    store.add_splits(dataset, record)
    return {**existing, **{g: s for g, (_, s) in record.items()}}


def check_fraction(test_size: float) -> None:
    if not 0.0 < test_size < 1.0:
        raise ConfigError("test_size", "must be a fraction strictly between 0 and 1", test_size)

