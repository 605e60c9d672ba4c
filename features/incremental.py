"""What both ways of filling the store share: the summary a run returns, and the plan
that makes a rerun cheap.

`features.runner.extract_audio` and `features.sequence_import.import_files` both skip a
source whose fingerprint (size, mtime, sha256) matches the one stored beside its rows,
and both decide the train/test split per group (`splits_for`): a group keeps the side it
was first given unless a source names another, and then the whole group moves. Skipping
unchanged sources must not leave part of a moved group behind, so before the writer
closes, `align_splits` gives every committed row its group's recorded split (rewriting
the rows of the sources that disagree, without extracting them again): a group is never
on both sides of the test split, whatever a manifest changes between runs.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow.compute as pc

from features.rows import ItemError, SourceRows
from features.splits import assign_test_split, named_splits
from features.store import FeatureSetWriter, FeatureStore
from features.store.schema import frame_chunks
from seqsweep.errors import ConfigError

__all__ = ["ExtractionSummary", "align_splits", "check_fraction", "file_sha256", "is_unchanged", "splits_for"]


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
    """group -> split for every group of the dataset, after recording this run's decisions.

    ``entries`` are (group, label, split the source names or None), one per source row. A
    split the sources name (a manifest column, a TRAIN/TEST file) wins for the whole group
    (`features.splits.named_splits` refuses a group named on both sides); otherwise a group
    keeps the split it was first given; new groups are split stratified by label. The rows
    already stored follow with `align_splits`.
    """
    existing = store.splits(dataset)
    entries = list(entries)
    named = named_splits(entries, where=f"{dataset}: split")
    own = {g: named[g] for g in named if existing.get(g) != named[g][1]}
    fresh: dict[str, str] = {}
    for group, label, _ in entries:
        if group not in named and group not in existing:
            fresh.setdefault(group, label)
    assigned = assign_test_split(fresh, test_size=test_size, seed=seed)
    record = {**own, **{g: (fresh[g], s) for g, s in assigned.items()}}
    store.add_splits(dataset, record)
    return {**existing, **{g: s for g, (_, s) in record.items()}}


def align_splits(writer: FeatureSetWriter, splits: dict[str, str], summary: ExtractionSummary | None = None,
                 *, groups: dict[str, str] | None = None) -> list[str]:
    """Give every committed row of ``writer``'s feature set its group's split (``splits``:
    group -> ``train``/``test``, as `splits_for` returns it); returns the sources whose rows
    moved, sorted.

    ``groups`` (source -> group, for sources whose rows all share one group, as an audio
    clip's segments do) is the group this run gives each listed source: a stored row whose
    group is another takes this one, and its split. Commits what the writer holds first
    (this run's rows already carry their group's split), then rewrites the rows of each
    source whose stored group or split disagrees: the same frames, ids, label and
    fingerprint, through `FeatureSetWriter.add`, which replaces a source's committed rows.
    Nothing is extracted again. Call it before ``writer.close()``; ``summary`` gets a note
    naming how many sources moved.
    """
    writer.commit()
    store, dataset, feature_set = writer.store, writer.dataset, writer.feature_set
    if not store.has(dataset, feature_set):
        return []
    groups = groups or {}
    light = store.read_rows(dataset, feature_set, columns=["source", "group", "split"]).to_pandas()
    group = light["source"].map(groups).fillna(light["group"])
    wanted = group.map(splits)
    moved = (group != light["group"]) | (wanted.notna() & (wanted != light["split"]))
    stale = sorted(light.loc[moved, "source"].unique().tolist())
    if not stale:
        return []
    table = store.read_rows(dataset, feature_set, filter=pc.field("source").isin(stale))
    frames = [values[offsets[r]:offsets[r + 1]] for values, offsets in frame_chunks(table["features"], writer.dim)
              for r in range(len(offsets) - 1)]
    column = {name: table[name].to_pylist() for name in
              ("source", "source_size", "source_mtime_ns", "source_hash", "clip_id", "group", "label", "split")}
    rows: dict[str, list[int]] = {}
    for i, source in enumerate(column["source"]):
        rows.setdefault(source, []).append(i)
    for source, at in rows.items():
        first = at[0]
        new_groups = [groups.get(source, column["group"][i]) for i in at]
        writer.add(SourceRows(
            source, column["source_size"][first], column["source_mtime_ns"][first], column["source_hash"][first],
            clip_ids=[column["clip_id"][i] for i in at], groups=new_groups,
            labels=[column["label"][i] for i in at],
            splits=[splits.get(g, column["split"][i]) for g, i in zip(new_groups, at)],
            frames=[frames[i] for i in at]))
    writer.commit()
    if summary is not None:
        summary.notes.append(f"split: the stored rows of {len(stale)} unchanged sources (e.g. {stale[0]}) follow "
                             "their group to its split, so no group straddles the test split")
    return stale


def check_fraction(test_size: float) -> None:
    if not 0.0 < test_size < 1.0:
        raise ConfigError("test_size", "must be a fraction strictly between 0 and 1", test_size)

