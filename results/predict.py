"""Predict the class of new audio with a sweep's saved ensemble (``seqsweep predict``).

The experiment folder's ``ensemble/ensemble.json`` (written by `results.pipeline`) names
the deployed members (bags of CV fold models, or refits), each candidate's members, combiner
and weights, the final choice, the classes and the feature set's parameters.
Each input file is extracted the same way the feature set was (`features.worker.extract_clip`
with `features.extract.FeatureSpec.from_manifest`); a segmented feature set gives several
segments per file, each predicted and their probabilities averaged per file.

A file that cannot be read or decoded (or is silent, or too short) gets a row with its
``error`` and no prediction; the other files are predicted.

The saved members are loaded from the experiment folder without unpickling anything: torch
state_dicts with ``weights_only=True`` and the scikit-learn baselines rebuilt from plain
arrays (see `trainables.training.saved`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.audio import AUDIO_EXTENSIONS
from features.sequences import SequenceSet, pad_sequences
from results.deploy import DeployedMember, load_members
from results.ensemble import combine
from seqsweep import storage
from seqsweep.errors import ConfigError, SeqsweepError, StoreError
from seqsweep.layout import ENSEMBLE_DIR, ENSEMBLE_JSON

__all__ = ["predict", "load_ensemble", "expand_inputs", "SavedEnsemble"]


class SavedEnsemble:
    """The saved ensemble of an experiment folder: ``info`` (``ensemble.json``) and the
    deployed members, loaded once."""

    def __init__(self, experiment_dir: str | os.PathLike) -> None:
        root = storage.resolve(experiment_dir)
        folder = storage.join(root, ENSEMBLE_DIR)
        path = storage.join(folder, ENSEMBLE_JSON)
        data = storage.read_bytes(path)
        if data is None:
            if not storage.is_dir(root):
                raise StoreError(root, "must be a sweep's experiment folder", "no such folder")
            raise StoreError(path, "predict needs the saved ensemble: run `seqsweep results ensemble DIR` "
                             "first", "missing")
        self.info: dict[str, Any] = json.loads(data)
        self.folder = folder
        self.classes: list[str] = list(self.info["classes"])
        self.members: dict[str, DeployedMember] = {m.trial_id: m for m in load_members(folder, self.info["members"])}

    @property
    def methods(self) -> list[str]:
        return list(self.info["methods"])

    @property
    def best_method(self) -> str:
        """What seqsweep hands over: the final choice among the rank-1 member and every
        ensemble (`results.choice`; ``best_member`` when the member won); for an ensemble saved
        before the final choice was made, the ensemble its out-of-fold estimate chose."""
        best = self.info.get("best") or {}
        return str(best.get("final") or best.get("ensemble") or self.methods[0])

    def feature_spec(self) -> Any:
        """The `FeatureSpec` the members were trained on; `ConfigError` if not audio-derived."""
        from features.extract import FeatureSpec

        features = self.info.get("features") or {}
        if features.get("source_type") != "audio":
            raise ConfigError(f"feature set {self.info.get('feature_set')!r}",
                              "predict works on audio feature sets (extracted by `seqsweep features "
                              "extract`), not on imported sequences", features.get("source_type"))
        return FeatureSpec.from_manifest(features)

    def predict_proba(self, data: SequenceSet, method: str) -> np.ndarray:
        """The ensemble ``method``'s probabilities [shape=(N, C)] for ``data``."""
        if method not in self.info["methods"]:
            raise ConfigError("--method", f"must be one of the saved ensemble's methods {self.methods}", method)
        entry = self.info["methods"][method]
        stack = np.stack([self.members[t].predict_proba(data) for t in entry["members"]])
        return combine(entry.get("combiner", method), stack, weights=entry["weights"])


def load_ensemble(experiment_dir: str | os.PathLike) -> SavedEnsemble:
    """Load ``<experiment_dir>/ensemble/`` (see `SavedEnsemble`)."""
    return SavedEnsemble(experiment_dir)


def expand_inputs(inputs: Sequence[str | os.PathLike]) -> list[str]:
    """Files as given, and the audio files (by extension, `AUDIO_EXTENSIONS`) under each
    folder, recursively and sorted. A path that does not exist is kept (it becomes an
    error row)."""
    out: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            out += sorted(str(p) for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
        else:
            out.append(str(path))
    return list(dict.fromkeys(out))


def _set(segments: list[np.ndarray], n_classes: int) -> SequenceSet:
    x, lengths = pad_sequences(segments)
    n = len(segments)
    ids = np.asarray([str(i) for i in range(n)], dtype=object)
    # labels are unknown: class 0 stands in (predict_proba checks ranges, never uses them)
    return SequenceSet(x, np.zeros(n, dtype=np.int64), [str(i) for i in range(n_classes)], ids, ids, lengths)


def _describe(path: str, exc: Exception) -> str:
    """One line naming the file, the rule and what was found (like the store's error log)."""
    if isinstance(exc, SeqsweepError):
        return f"{type(exc).__name__}: {exc}"
    if isinstance(exc, OSError) and not type(exc).__module__.startswith("soundfile"):
        return f"{type(exc).__name__}: {path}: must be a readable file (got {exc.strerror or exc})"
    message = re.sub(r"<_io\.BytesIO object at 0x[0-9a-f]+>", path, str(exc))
    return f"{type(exc).__name__}: {path}: must decode as audio (WAV, FLAC, OGG, MP3): {message}"


def predict(
    experiment_dir: str | os.PathLike,
    inputs: Sequence[str | os.PathLike],
    *,
    method: str | None = None,
    out: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Predict each audio file in ``inputs`` (files or folders) with the saved candidate
    ``method`` (default: the final choice, a single member or an ensemble, whose one
    out-of-fold figure ``ensembles.csv``'s ``final`` row reports; per file, as its per-group
    test figures are). ``best_member`` is the rank-1 member alone.

    Returns a frame with one row per file: ``path``, ``predicted`` (class name, empty on
    error), ``prob_<class>`` per class (rows sum to 1; NaN on error) and ``error`` (empty
    when fine). With ``out``, also writes it as CSV (atomically).

    Raises `StoreError` without a saved ensemble, `ConfigError` for an unknown ``method`` or
    a feature set that is not audio-derived.
    """
    from features.extract import warm_up
    from features.worker import extract_clip

    saved = load_ensemble(experiment_dir)
    method = method or saved.best_method
    if method not in saved.methods:
        raise ConfigError("--method", f"must be one of the saved ensemble's methods {saved.methods}", method)
    spec = saved.feature_spec()
    files = expand_inputs(inputs)
    if not files:
        raise ConfigError("INPUT", "must name audio files or folders holding audio files", list(map(str, inputs)))
    warm_up(spec)
    segments: dict[str, list[np.ndarray]] = {}
    errors: dict[str, str] = {}
    for path in files:
        try:
            segments[path] = extract_clip(path, spec)
        except Exception as exc:  # this file only: reported in its row
            errors[path] = _describe(path, exc)

    c = len(saved.classes)
    proba: dict[str, np.ndarray] = {}
    if segments:
        order = [p for p in files if p in segments]
        flat = [s for p in order for s in segments[p]]
        try:
            all_proba = saved.predict_proba(_set(flat, c), method)
            start = 0
            for p in order:
                k = len(segments[p])
                proba[p] = all_proba[start:start + k].mean(axis=0)
                start += k
        except ConfigError:
            raise
        except Exception:  # one file the model cannot take (e.g. too short): find it, keep the rest
            for p in order:
                try:
                    proba[p] = saved.predict_proba(_set(segments[p], c), method).mean(axis=0)
                except Exception as exc:
                    errors[p] = f"{type(exc).__name__}: {p}: the ensemble could not predict it: {exc}"

    rows = []
    for path in files:
        if path in proba:
            p = proba[path] / proba[path].sum()
            rows.append({"path": path, "predicted": saved.classes[int(np.argmax(p))],
                         **{f"prob_{name}": float(v) for name, v in zip(saved.classes, p)}, "error": ""})
        else:
            rows.append({"path": path, "predicted": "", **{f"prob_{name}": np.nan for name in saved.classes},
                         "error": errors.get(path, "not predicted")})
    frame = pd.DataFrame(rows, columns=["path", "predicted", *[f"prob_{n}" for n in saved.classes], "error"])
    if out is not None:
        storage.write_csv_atomic(frame, os.fspath(out))
    return frame
