"""Feature extraction into the store vs a plain sequential librosa loop, in one run.

    python benchmarks/extract_store.py                 # 200 clips of 30 s (the issue's setup)
    python benchmarks/extract_store.py --clips 40 --seconds 10

Prints, side by side:
  * the plain loop: for each file, librosa.load + mfcc + chroma_stft + spectral_centroid
    + spectral_rolloff called the usual way on the waveform, stacked to (T, 27);
  * seqsweep: `extract_audio` as Ray tasks into the Parquet store, called with no Ray
    running, as a user's first command is: it starts the local Ray instance (no
    dashboard, the command's default), and the driver extracts clips while Ray starts and
    until Ray's first result (`features.head_start`); the same extraction
    again with the workers warm; and, on a new Ray instance started on its own first, the
    extraction with new workers (each imports librosa and warms numba up once);
  * the ratios;
  * a second run on unchanged audio, as a fraction of the first;
  * loading the whole feature set into padded float32 arrays, in GB/s.
Nothing here is asserted: numbers are printed for people to read.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def plain_loop(paths: list[Path]) -> list[np.ndarray]:
    """What one would write by hand: one file after the other, each feature on the waveform."""
    import librosa

    out = []
    for path in paths:
        y, sr = librosa.load(path, sr=22050, mono=True)
        parts = [
            librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13, hop_length=512),
            librosa.feature.chroma_stft(y=y, sr=sr, hop_length=512, tuning=0.0),
            librosa.feature.spectral_centroid(y=y, sr=sr, hop_length=512),
            librosa.feature.spectral_rolloff(y=y, sr=sr, hop_length=512),
        ]
        out.append(np.concatenate(parts).T.astype(np.float32))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--clips", type=int, default=20, help="clips per class")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workdir", type=Path, default=None, help="keep files here (default: a temp dir)")
    args = parser.parse_args()

    from features import FeatureSpec, FeatureStore, extract_audio
    from features.extract import compute_features, warm_up
    from features.synth import write_dataset

    work = args.workdir or Path(tempfile.mkdtemp(prefix="seqsweep-bench-"))
    audio = work / "audio"
    t = time.perf_counter()
    paths = write_dataset(audio, classes=args.classes, clips=args.clips, seconds=args.seconds, seed=0)
    n = len(paths)
    print(f"{n} synthetic clips of {args.seconds:g} s written in {time.perf_counter() - t:.1f} s ({work})")

    spec = FeatureSpec.create("mfcc27")
    warm_up(spec)  # both sides start with numba compiled in this process
    t = time.perf_counter()
    plain = plain_loop(paths)
    t_plain = time.perf_counter() - t

    import shutil

    import ray

    from seqsweep.ray_runtime import ensure_ray

    # what a user's first command does (`seqsweep features extract`): extract_audio starts the
    # local Ray instance itself, without its dashboard (the command's default), and the
    # driver extracts clips while it starts and until Ray's first result (features.head_start)
    t = time.perf_counter()
    summary = extract_audio(audio, store=work / "store", dataset="bench", spec=spec, progress=False,
                            dashboard=False)
    t_store = time.perf_counter() - t
    t = time.perf_counter()  # the same work again into a new store: workers already warm
    extract_audio(audio, store=work / "store-warm", dataset="bench", spec=spec, progress=False)
    t_warm = time.perf_counter() - t
    shutil.rmtree(work / "store-warm")

    ray.shutdown()  # a new instance, started on its own: its start, then new workers on it
    t = time.perf_counter()
    ensure_ray(include_dashboard=False)
    t_ray = time.perf_counter() - t
    t = time.perf_counter()  # new worker processes: each imports librosa and warms numba up once
    extract_audio(audio, store=work / "store-cold", dataset="bench", spec=spec, progress=False)
    t_cold = time.perf_counter() - t
    shutil.rmtree(work / "store-cold")

    t = time.perf_counter()
    again = extract_audio(audio, store=work / "store", dataset="bench", spec=spec, progress=False)
    t_again = time.perf_counter() - t
    assert again.added == 0

    store = FeatureStore(work / "store")
    seqs = store.load("bench", "mfcc27")
    same = np.allclose(compute_features(__import__("librosa").load(paths[0], sr=22050)[0], spec),
                       plain[0], rtol=1e-4, atol=1e-3)
    def best_of_3(padded: bool):
        times = []
        for _ in range(3):
            t = time.perf_counter()
            out = store.load("bench", "mfcc27", padded=padded)
            times.append(time.perf_counter() - t)
        return min(times), out

    t_load, padded = best_of_3(True)
    gb = padded.x.nbytes / 1e9
    t_ragged, ragged = best_of_3(False)
    raw_gb = sum(x.nbytes for x in ragged.x) / 1e9

    print()
    print(f"{'':34}{'seconds':>10}{'clips/s':>10}")
    print(f"{'plain sequential librosa loop':34}{t_plain:>10.1f}{n / t_plain:>10.1f}")
    print(f"{'seqsweep, Ray start included':34}{t_store:>10.1f}{n / t_store:>10.1f}")
    print(f"{'  (Ray started on its own)':34}{t_ray:>10.1f}")
    print(f"{'  then extraction, new workers':34}{t_cold:>10.1f}{n / t_cold:>10.1f}")
    print(f"{'seqsweep, workers already warm':34}{t_warm:>10.1f}{n / t_warm:>10.1f}")
    print(f"speed-up over the plain loop: {t_plain / t_store:.2f}x with Ray's start, "
          f"{t_plain / t_cold:.2f}x on a running Ray, {t_plain / t_warm:.2f}x with warm workers")
    print(f"second run on unchanged audio: {t_again:.3f} s = {100 * t_again / t_store:.2f}% of the first "
          f"({100 * t_again / t_warm:.2f}% of an extraction with warm workers)")
    print(f"store frames equal the plain loop's: {same}; {summary.clips_total} clips, {len(seqs)} loaded")
    print(f"load padded  {padded.x.shape} (best of 3): {t_load:.3f} s, {gb / t_load:.2f} GB/s of float32 written")
    print(f"load ragged  ({len(ragged)} views, best of 3): {t_ragged:.3f} s, {raw_gb / t_ragged:.2f} GB/s of frames")


if __name__ == "__main__":
    main()
