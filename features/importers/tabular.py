"""`read_table`: a tabular feature CSV, one row per clip, each row one frame (T = 1).

Made for GTZAN's ``features_30_sec.csv`` and the like: summary statistics per clip
rather than sequences. pandas parses the file (as strings, so that a bad cell is
reported by row and column rather than silently turned into NaN).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from features.importers.groups import split_from_name, track_of
from features.importers.records import ImportResult, Record
from features.importers.rules import check_file, finish_frames, label_str
from features.rows import ItemError
from seqsweep.errors import InputError

__all__ = ["read_table"]


def read_table(
    path: str | os.PathLike[str],
    *,
    label_column: str = "label",
    id_column: str | None = None,
    group_column: str | None = None,
    split_column: str | None = "split",
    drop_columns: Sequence[str] = ("filename", "length"),
) -> ImportResult:
    """Read a tabular feature CSV (one row per clip) into records of one frame each.

    Made for files like GTZAN's ``features_30_sec.csv`` (``filename, length,
    chroma_stft_mean, ..., mfcc20_var, label``): every column that is not the label,
    id, group, split or a ``drop_columns`` column is a feature column, and must be
    numeric (bools count as 0/1).

    Parameters
    ----------
    path : the CSV file (comma-separated, one header line).
    label_column : the class column (values read as strings).
    id_column : the clip-id column; None uses ``filename`` when present, else
        ``"<file name>#<row>"`` (row counted from 0, header excluded).
    group_column : the column of groups that must not straddle folds; None: when a
        ``filename`` column names GTZAN-style segments (``blues.00000.3.wav``), a row's
        group is its track (``blues.00000``, `track_of`), and any other row (or every
        row, without such a column) is its own group.
    split_column : the column holding ``train`` / ``test`` (case-blind; empty = None),
        used when present; without it the split comes from the file name.
    drop_columns : columns that are neither features nor the above (ignored when absent).

    Returns
    -------
    `ImportResult` whose records have ``frames`` ``float32[1, D]`` (T = 1, D = number
    of feature columns, in file order) and whose ``columns`` lists those D names.

    Per-item errors (row skipped, others kept), naming ``"<path>#<row>"``: a NaN /
    empty / infinite feature (the columns are named), an empty label, a split value
    other than train/test, an empty or repeated clip id.

    Raises
    ------
    InputError : the file is missing or not a CSV, has no rows, lacks ``label_column``
        (or a named id / group column; the message lists the columns found), has a
        non-numeric feature column (named, with an example value), or no feature column.
    """
    import pandas as pd  # pandas is a core dependency; imported here to keep import light

    path = Path(path)
    check_file(path)
    where_file = str(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(where_file, "must be a readable CSV file with a header line",
                         f"{type(exc).__name__}: {exc}") from exc
    columns = [str(c) for c in df.columns]
    df.columns = columns
    if len(set(columns)) != len(columns):
        dup = sorted({c for c in columns if columns.count(c) > 1})
        raise InputError(where_file, "column names must be distinct", f"repeated {dup}")

    def need(col: str | None, role: str) -> None:
        if col is not None and col not in columns:
            raise InputError(f"{where_file}: column {col!r}",
                             f"the table needs its {role} column {col!r}",
                             f"columns found: {', '.join(columns)}")

    need(label_column, "label")
    need(id_column, "id")
    need(group_column, "group")
    if df.empty:
        raise InputError(where_file, "a feature table must have at least one row", "0 rows")

    if id_column is None and "filename" in columns:
        id_column = "filename"
    use_split = split_column is not None and split_column in columns
    special = {label_column, id_column, group_column, split_column if use_split else None}
    dropped = set(drop_columns)
    feature_cols = [c for c in columns if c not in special and c not in dropped]
    if not feature_cols:
        raise InputError(where_file, "a feature table needs at least one numeric feature column",
                         f"columns found: {', '.join(columns)}")

    values = _table_features(df, feature_cols, where_file)  # float64[N, D], NaN for empty
    file_split = split_from_name(path.stem)
    records: list[Record] = []
    errors: list[ItemError] = []
    seen: set[str] = set()
    bad_rows = ~np.isfinite(values).all(axis=1)
    labels = df[label_column].tolist()
    ids = df[id_column].tolist() if id_column is not None else None
    groups = df[group_column].tolist() if group_column is not None else None
    tracks = ([track_of(v) for v in df["filename"].tolist()]
              if group_column is None and "filename" in columns else None)
    splits = df[split_column].tolist() if use_split else None
    for row in range(len(df)):
        where = f"{where_file}#{row}"
        try:
            clip_id = ids[row].strip() if ids is not None else f"{path.name}#{row}"
            if not clip_id:
                raise InputError(where, f"the id column {id_column!r} must not be empty", "''")
            if clip_id in seen:
                raise InputError(where, "clip ids must be unique", repr(clip_id))
            label = label_str(labels[row], f"{where} [{label_column}]")
            group = clip_id
            if tracks is not None and tracks[row] is not None:
                group = tracks[row]
            if groups is not None:
                group = groups[row].strip()
                if not group:
                    raise InputError(f"{where} [{group_column}]", "a group must not be empty", "''")
            split = file_split
            if splits is not None:
                split = _split_value(splits[row], f"{where} [{split_column}]")
            if bad_rows[row]:
                bad = [feature_cols[j] for j in np.flatnonzero(~np.isfinite(values[row]))]
                shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
                raise InputError(where, "feature values must be present and finite",
                                 f"NaN/empty/inf in {shown}")
            frames = finish_frames(values[row : row + 1], where)
        except InputError as exc:
            errors.append(ItemError.from_exception(exc, path=where, stage="table"))
            continue
        seen.add(clip_id)
        records.append(Record(clip_id=clip_id, group=group, label=label, split=split,
                              frames=frames))
    return ImportResult(records=records, errors=errors, columns=feature_cols)


_NA_TOKENS = {"", "nan", "na", "n/a", "null", "none", "-nan"}
_TRUE_FALSE = {"true": 1.0, "false": 0.0}


def _table_features(df: Any, feature_cols: list[str], where: str) -> np.ndarray:
    """The feature columns (read as strings) as ``float64[N, D]``, NaN for empty cells."""
    import pandas as pd

    out = np.empty((len(df), len(feature_cols)), dtype=np.float64)
    for j, name in enumerate(feature_cols):
        text = df[name].astype(object).map(lambda v: v.strip() if isinstance(v, str) else v)
        low = text.map(lambda v: v.lower() if isinstance(v, str) else v)
        is_na = low.isin(_NA_TOKENS) | text.isna()
        is_bool = low.isin(_TRUE_FALSE.keys())
        nums = pd.to_numeric(text.where(~(is_na | is_bool)), errors="coerce")
        bad = nums.isna() & ~is_na & ~is_bool
        if bad.any():
            r = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(
                f"{where}: column {name!r}",
                "feature columns must be numeric (name other columns in drop_columns, "
                "id_column, group_column or label_column)",
                f"{text.iloc[r]!r} in row {r}",
            )
        col = np.array(nums.to_numpy(dtype=np.float64, na_value=np.nan))
        col[is_bool.to_numpy()] = low[is_bool].map(_TRUE_FALSE).to_numpy(dtype=np.float64)
        out[:, j] = col
    return out


def _split_value(value: object, where: str) -> str | None:
    text = value.strip().lower() if isinstance(value, str) else ""
    if text in ("", "nan", "none"):
        return None
    if text in ("train", "test"):
        return text
    raise InputError(where, "a split must be train, test or empty", repr(value))
