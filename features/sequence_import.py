"""Import pickled, ``.ts`` or tabular CSV sequence files into the store (`import_files`).

The readers (`features.importers`) turn each file into records; this module decides what
to read again (a file whose bytes and group options are unchanged is skipped), fixes the
feature set's frame dimension D, gives new groups their split, turns the values into token
ids when the feature set holds tokens (`features.tokens`), and writes the rows. No Ray:
parsing a file is fast next to extracting audio.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from features.importers import FORMATS, GroupFile, Record, format_of, read_source
from features.incremental import (
    ExtractionSummary,
    align_splits,
    check_fraction,
    file_sha256,
    splits_for,
)
from features.rows import ItemError, SourceRows
from features.store import FeatureSetWriter, FeatureStore
from features.tokens import UNKNOWN_ID, TokenVocab, check_tokens, looks_like_tokens
from seqsweep.errors import ConfigError, InputError, SeqsweepError

"""The ``format=`` names `import_files` takes: those `features.importers.read_source` reads."""

__all__ = ["import_files"]

_Loaded = tuple[Path, os.stat_result, str, list[Record]]
"""One imported source: its path, stat, fingerprint hash and good records."""


def _import_info(*, feature_set: str, format: str | None, sources: list[str], tokens: bool,
                 test_size: float, seed: int) -> dict:
    """The writer's ``info`` for an imported feature set; a token set hashes apart, so one
    feature set never mixes token ids with numbers."""
    params: dict = {"format": format or "auto"}
    if tokens:
        params["tokens"] = True
    return {"kind": feature_set, "params": params, "beat_sync": False, "segment_seconds": None,
            "param_hash": f"import:{feature_set}" + (":tokens" if tokens else ""), "source_type": "import",
            "source": sources, "test_size": test_size, "split_seed": seed}


def _group_files(files: Sequence[Path], groups: Sequence[str | Path] | None) -> list[GroupFile | None]:
    """One `GroupFile` (or None) per source file, read up front (a missing one fails here)."""
    if not groups:
        return [None] * len(files)
    if len(groups) != len(files):
        raise ConfigError("--groups", f"needs one groups file per source file ({len(files)}), in the same order",
                          f"{len(groups)} groups files")
    return [GroupFile.read(g) for g in groups]


def _reader_options(path: Path, fmt: str, *, group_column: str | None,
                    group_file: GroupFile | None) -> dict:
    """The reader keywords the import options mean for one file of format ``fmt``."""
    if fmt == "csv":
        if group_file is not None:
            raise ConfigError(f"--groups {group_file.path}", "groups files are for pickle and .ts sources; "
                              "a CSV names its group column (--group-column)", str(path))
        return {"group_column": group_column}
    if group_column is not None:
        raise ConfigError("--group-column", "is for CSV sources; pickle and .ts sources take --groups FILE",
                          str(path))
    return {"groups": group_file}


def _import_hash(path: Path, options: dict) -> str:
    """The source's sha256, folded with the group options that shape its rows, so a new
    groups file or group column re-imports an unchanged source."""
    sha = file_sha256(str(path))
    shaping = []
    if options.get("group_column") is not None:
        shaping.append(f"group_column={options['group_column']}")
    if options.get("groups") is not None:
        shaping.append("groups=" + hashlib.sha256("\n".join(options["groups"].groups).encode()).hexdigest())
    if not shaping:
        return sha
    return hashlib.sha256("|".join([sha, *shaping]).encode()).hexdigest()


def _token_records(fresh: list[_Loaded], errors: list[ItemError]) -> list[_Loaded]:
    """``fresh`` without the records that cannot be token ids (each one an error)."""
    out = []
    for f, st, sha, records in fresh:
        kept = []
        for r in records:
            where = f"{f} [{r.clip_id}]"
            try:
                check_tokens(r.frames, where=where)
            except InputError as exc:
                errors.append(ItemError.from_exception(exc, path=where, stage="check"))
                continue
            kept.append(r)
        if kept:
            out.append((f, st, sha, kept))
    return out


def _encode_tokens(writer: FeatureSetWriter, fresh: list[_Loaded], splits: dict[str, str],
                   summary: ExtractionSummary) -> list[_Loaded]:
    """Grow the writer's vocabulary with the train records' values, record it in its manifest
    (before any part is written), and return ``fresh`` with every record's frames as ids."""
    entry = writer.manifest.get("tokens")
    old = TokenVocab.from_manifest(entry) if entry is not None else TokenVocab()
    train = [r.frames for *_, recs in fresh for r in recs if splits[r.group] == "train"]
    vocab = old.extended(np.unique(np.concatenate(train)) if train else [])
    writer.manifest["tokens"] = vocab.to_manifest()
    encoded = [(f, st, sha, [replace(r, frames=vocab.encode(r.frames)) for r in recs]) for f, st, sha, recs in fresh]
    unknown = sum(int((r.frames == UNKNOWN_ID).sum()) for *_, recs in encoded for r in recs)
    total = sum(r.n_frames for *_, recs in encoded for r in recs)
    summary.notes.append(f"tokens: {vocab.vocab_size} ids ({vocab.vocab_size - 1} values seen in the train split "
                         f"+ unknown id {UNKNOWN_ID}); {unknown} of {total} imported steps are unknown")
    if vocab.vocab_size > old.vocab_size and writer.n_clips:
        summary.notes.append(f"tokens: the vocabulary grew from {old.vocab_size} to {vocab.vocab_size} ids; rows "
                             "imported before keep their ids (import train and test files together)")
    return encoded


def import_files(
    files: Sequence[str | Path],
    *,
    store: str | FeatureStore,
    dataset: str,
    format: str | None = None,
    feature_set: str = "raw",
    test_size: float = 0.2,
    seed: int = 0,
    tokens: bool | None = None,
    group_column: str | None = None,
    groups: Sequence[str | Path] | None = None,
) -> ExtractionSummary:
    """Import pickled, ``.ts`` or tabular CSV sequences into ``<dataset>/<feature_set>``.

    A file whose bytes (and group options) are unchanged since it was imported is skipped;
    a changed one replaces its rows. Each bad item is reported and the rest are kept.

    Parameters
    ----------
    files : the sources (format from ``format`` or each file's extension).
    tokens : store the values as token ids (`features.tokens`): True forces it (a value
        that is not a whole number, or D > 1, is an item error), False stores numbers,
        None guesses: a new feature set is tokens when every imported sequence has one
        whole number per step; an existing one keeps what it is.
    group_column : for CSV sources, the column of groups (see `features.importers.read_table`;
        without it a GTZAN-style ``filename`` column gives the track).
    groups : for pickle and ``.ts`` sources, one groups file per source, in the same order
        (`features.importers.GroupFile`: one group per line, one line per item).

    Raises
    ------
    ConfigError : a bad ``test_size`` or ``format``, ``groups`` not one per file, a group
        option for the other kind of source.
    InputError : a missing groups file, or nothing readable at all.
    StoreError : ``tokens`` contradicts an existing feature set.
    """
    check_fraction(test_size)
    if format is not None and format not in FORMATS:
        raise ConfigError("format", f"must be one of {list(FORMATS)}", format)
    started = time.perf_counter()
    files = [Path(f) for f in files]
    group_files = _group_files(files, groups)
    store = store if isinstance(store, FeatureStore) else FeatureStore(store)
    existing = store.manifest(dataset, feature_set) if store.has(dataset, feature_set) else None
    sources = sorted(set(existing.get("source", []) if existing else []) | {str(f) for f in files})

    def info(is_tokens: bool) -> dict:
        return _import_info(feature_set=feature_set, format=format, sources=sources, tokens=is_tokens,
                            test_size=test_size, seed=seed)

    # an existing feature set fixes D, tokens or not, and knows its files: unchanged ones are not parsed again
    writer = None
    if existing:
        tokens = ("tokens" in existing) if tokens is None else tokens
        writer = store.writer(dataset, feature_set, info=info(tokens), dim=existing["dim"])
    known = writer.fingerprints() if writer else {}
    summary = ExtractionSummary(store.root, dataset, feature_set, sources=len(files))
    errors: list[ItemError] = []
    loaded: list[_Loaded] = []
    for f, group_file in zip(files, group_files):
        try:
            fmt = format_of(f, format=format)
        except ConfigError as exc:  # this file only: the others are still imported
            errors.append(ItemError.from_exception(exc, path=str(f), stage="read"))
            continue
        options = _reader_options(f, fmt, group_column=group_column, group_file=group_file)
        try:
            st = f.stat()
            sha = _import_hash(f, options)
            if known.get(f.name, (None, None, None))[2] == sha:
                summary.unchanged += 1
                continue
            result = read_source(f, format=fmt, **options)
        except (OSError, SeqsweepError) as exc:
            errors.append(ItemError.from_exception(exc, path=str(f), stage="read"))
            continue
        errors.extend(result.errors)
        if result.records:
            loaded.append((f, st, sha, result.records))

    if writer is None:
        dims = {r.frames.shape[1] for _, _, _, recs in loaded for r in recs}
        if not dims:
            raise InputError(", ".join(map(str, files)), "at least one sequence must be readable",
                             f"{len(errors)} errors: " + "; ".join(f"{e.path}: {e.message}" for e in errors[:3]))
        if tokens is None:
            tokens = looks_like_tokens(r.frames for *_, recs in loaded for r in recs)
        writer = store.writer(dataset, feature_set, info=info(tokens), dim=min(dims))
    dim = writer.dim

    fresh = []
    for f, st, sha, records in loaded:
        bad = {r.frames.shape[1] for r in records} - {dim}
        if bad:
            errors.append(ItemError(str(f), "check", "InputError",
                                    f"every sequence of feature set {feature_set!r} must have D={dim} values "
                                    f"per frame (got D={sorted(bad)})"))
        else:
            fresh.append((f, st, sha, records))
    if tokens:
        fresh = _token_records(fresh, errors)
    splits = splits_for(store, dataset, ((r.group, r.label, r.split) for *_, recs in fresh for r in recs),
                         test_size=test_size, seed=seed)
    if tokens:
        fresh = _encode_tokens(writer, fresh, splits, summary)
    for f, st, sha, records in fresh:
        writer.add(SourceRows(
            f.name, st.st_size, st.st_mtime_ns, sha,
            clip_ids=[r.clip_id for r in records], groups=[r.group for r in records],
            labels=[r.label for r in records], splits=[splits[r.group] for r in records],
            frames=[r.frames for r in records]))
        summary.added += 1
    writer.manifest["source"] = sources  # an existing manifest keeps its info otherwise
    writer.add_errors(errors)
    align_splits(writer, splits, summary)  # stored rows of unchanged files follow their group's split
    writer.close()
    summary.errors, summary.failed = errors, len(errors)
    summary.clips_total = writer.n_clips
    summary.seconds = time.perf_counter() - started
    return summary
