"""Named feature sets: what a clip's waveform becomes, frame by frame.

A `FeatureSpec` is a feature set's kind plus every parameter that shapes its values.
Its `name` is what the store calls the folder, and a changed parameter changes the
name, so a new parameter set never overwrites an old one:

========== ============================================================ ====
kind       frames                                                       D
========== ============================================================ ====
mfcc27     13 MFCC + 12 chroma + spectral centroid + spectral rolloff   27
mel128     log-mel spectrogram (dB), 128 bands                          128
chroma12   chroma from the STFT                                         12
wave       the raw waveform resampled (8000 Hz by default)              1
========== ============================================================ ====

``beat_sync=True`` averages the frames between detected beats (librosa's beat
tracker and `librosa.util.sync`), which turns a 30 s clip's ~1300 frames into ~60.

Every spectral feature of one clip is computed from one shared STFT: the magnitude
is taken once and handed to each librosa feature function (``S=``), which gives the
same values as calling each function on the waveform, without four STFTs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from seqsweep.errors import ConfigError

__all__ = ["FEATURE_KINDS", "FeatureSpec", "compute_features", "warm_up"]

#: Default parameters of each kind. Every key can be overridden; nothing else exists.
FEATURE_KINDS: dict[str, dict[str, Any]] = {
    "mfcc27": {"sr": 22050, "n_fft": 2048, "hop_length": 512, "n_mfcc": 13, "n_chroma": 12,
               "n_mels": 128, "rolloff_percent": 0.85},
    "mel128": {"sr": 22050, "n_fft": 2048, "hop_length": 512, "n_mels": 128, "fmax": 11025.0},
    "chroma12": {"sr": 22050, "n_fft": 2048, "hop_length": 512, "n_chroma": 12},
    "wave": {"sr": 8000},
}

# Bump when the computation changes in a way that changes stored values.
_COMPUTE_VERSION = 1


@dataclass(frozen=True)
class FeatureSpec:
    """One feature set: a kind, its parameters, beat synchronisation and segmentation.

    Build it with `FeatureSpec.create` (which checks every name and value); the fields
    are then frozen. ``segment_seconds`` cuts each clip into equal segments before the
    features are computed (``None`` keeps whole clips).
    """

    kind: str
    params: MappingProxyType = field(compare=False)
    beat_sync: bool = False
    segment_seconds: float | None = None

    @classmethod
    def create(
        cls,
        kind: str,
        *,
        beat_sync: bool = False,
        segment_seconds: float | None = None,
        **overrides: Any,
    ) -> FeatureSpec:
        if kind not in FEATURE_KINDS:
            raise ConfigError("feature_set", f"must be one of {sorted(FEATURE_KINDS)}", kind)
        defaults = FEATURE_KINDS[kind]
        params = dict(defaults)
        for key, value in overrides.items():
            if key not in defaults:
                raise ConfigError(
                    f"{kind} parameter {key!r}", f"must be one of {sorted(defaults)}", value
                )
            want = type(defaults[key])
            try:
                params[key] = want(value)
            except (TypeError, ValueError):
                raise ConfigError(f"{kind} parameter {key!r}", f"must be a {want.__name__}", value) from None
            if params[key] <= 0:
                raise ConfigError(f"{kind} parameter {key!r}", "must be positive", value)
        if kind == "wave" and beat_sync:
            raise ConfigError("beat_sync", "applies to spectral feature sets, not 'wave'", True)
        if segment_seconds is not None and not segment_seconds > 0:
            raise ConfigError("segment_seconds", "must be a positive number of seconds", segment_seconds)
        return cls(kind, MappingProxyType(params), bool(beat_sync),
                   None if segment_seconds is None else float(segment_seconds))

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> FeatureSpec:
        """Rebuild the spec a feature set was made with (to extract new audio the same way)."""
        return cls.create(
            manifest["kind"],
            beat_sync=manifest["beat_sync"],
            segment_seconds=manifest["segment_seconds"],
            **manifest["params"],
        )

    # ---- identity ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": dict(self.params), "beat_sync": self.beat_sync,
                "segment_seconds": self.segment_seconds}

    @property
    def param_hash(self) -> str:
        """sha256 over the kind, every parameter and the computation's version."""
        blob = json.dumps({**self.to_dict(), "version": _COMPUTE_VERSION}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    @property
    def name(self) -> str:
        """Folder name: ``mfcc27``, ``mfcc27_beat``, ``mel128_seg3``, ``mfcc27-1a2b3c`` (overridden)."""
        name = self.kind
        if self.beat_sync:
            name += "_beat"
        if self.segment_seconds is not None:
            name += f"_seg{self.segment_seconds:g}"
        if dict(self.params) != FEATURE_KINDS[self.kind]:
            name += "-" + self.param_hash[:6]
        return name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FeatureSpec) and other.param_hash == self.param_hash

    def __hash__(self) -> int:
        return hash(self.param_hash)

    @property
    def sr(self) -> int:
        """The sample rate audio is loaded at."""
        return int(self.params["sr"])

    @property
    def dim(self) -> int:
        """D, values per frame."""
        p = self.params
        return {"mfcc27": p.get("n_mfcc", 0) + p.get("n_chroma", 0) + 2, "mel128": p.get("n_mels"),
                "chroma12": p.get("n_chroma"), "wave": 1}[self.kind]

    @property
    def min_samples(self) -> int:
        """The shortest waveform (in samples) that gives at least one full analysis window."""
        return 1 if self.kind == "wave" else int(self.params["n_fft"])


def compute_features(y: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """Frames of one mono waveform.

    Parameters
    ----------
    y : float32 waveform at ``spec.sr`` [shape=(n_samples,)]
    spec : the feature set

    Returns
    -------
    float32 frames [shape=(T, spec.dim)]; T ~ n_samples / hop_length + 1, or the number
    of beat intervals + 1 when ``spec.beat_sync``.
    """
    import librosa  # imported here: a worker pays for librosa once, the driver never

    p = spec.params
    if spec.kind == "wave":
        return np.ascontiguousarray(y, dtype=np.float32)[:, None]

    stft = dict(n_fft=p["n_fft"], hop_length=p["hop_length"])
    mag = np.abs(librosa.stft(y, **stft))  # (1 + n_fft/2, T)
    power = mag**2
    sr = p["sr"]
    if spec.kind == "mfcc27":
        mel = librosa.feature.melspectrogram(S=power, sr=sr, n_mels=p["n_mels"])
        parts = [
            librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=p["n_mfcc"]),
            librosa.feature.chroma_stft(S=power, sr=sr, n_chroma=p["n_chroma"], tuning=0.0, **stft),
            librosa.feature.spectral_centroid(S=mag, sr=sr, **stft),
            librosa.feature.spectral_rolloff(S=mag, sr=sr, roll_percent=p["rolloff_percent"], **stft),
        ]
        frames = np.concatenate(parts, axis=0)
    elif spec.kind == "mel128":
        mel = librosa.feature.melspectrogram(S=power, sr=sr, n_mels=p["n_mels"], fmax=p["fmax"])
        frames = librosa.power_to_db(mel, ref=np.max)
    else:  # chroma12
        frames = librosa.feature.chroma_stft(S=power, sr=sr, n_chroma=p["n_chroma"], tuning=0.0, **stft)

    if spec.beat_sync:
        _, beats = librosa.beat.beat_track(y=y, sr=sr, hop_length=p["hop_length"])
        frames = librosa.util.sync(frames, beats, aggregate=np.mean)
    return np.ascontiguousarray(frames.T, dtype=np.float32)


_WARM: set[str] = set()


def warm_up(spec: FeatureSpec) -> None:
    """Run the feature code once on a short tone so numba compiles before real files.

    Call at the start of every worker task: it does the work once per process and
    feature kind, and costs nothing after.
    """
    key = f"{spec.kind}:{spec.beat_sync}"
    if key in _WARM:
        return
    t = np.arange(spec.sr, dtype=np.float32) / spec.sr
    compute_features((0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32), spec)
    _WARM.add(key)
