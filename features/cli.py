"""`seqsweep features ...`: make synthetic audio, fill the store, show what it holds."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from features.extract import FEATURE_KINDS
from features.importers import FORMATS
from seqsweep.errors import SeqsweepError

__all__ = ["features"]


def _parse_params(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for text in values:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"must look like KEY=VALUE (got {text!r})", param_hint="--param")
        out[key.strip()] = value.strip()
    return out


@click.group()
def features() -> None:
    """Build and inspect the Parquet feature store."""


@features.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--classes", default=4, show_default=True, help="Number of classes (genres).")
@click.option("--clips", default=10, show_default=True, help="Clips (with --tokens: sequences) per class.")
@click.option("--seconds", default=3.0, show_default=True, help="Length of each clip.")
@click.option("--seed", default=0, show_default=True, help="Random seed; the same seed writes the same files.")
@click.option("--tokens", is_flag=True,
              help="Write token sequences instead of audio: OUT_DIR/chords.pkl, Markov chains over chord "
                   "ids, -1 padded, in the pickle format `features import` reads.")
@click.option("--vocab", default=24, show_default=True, help="With --tokens: distinct chord ids.")
def synth(out_dir: Path, classes: int, clips: int, seconds: float, seed: int, tokens: bool, vocab: int) -> None:
    """Write synthetic genre-like WAV clips in the GTZAN layout (OUT_DIR/<class>/<class>.00000.wav),
    or with --tokens synthetic chord sequences (OUT_DIR/chords.pkl).

    Audio classes differ in tempo, timbre, chord colour and noise, with enough spread
    that no single summary feature separates them. Token classes differ mostly in which
    chord follows which (their transition matrices), a little in how often each occurs.
    """
    from features.synth import write_dataset
    from features.synth_tokens import write_token_dataset

    if tokens:
        path = write_token_dataset(out_dir, classes=classes, sequences=clips, vocab=vocab, seed=seed)
        click.echo(f"wrote {classes * clips} token sequences ({classes} classes x {clips}, "
                   f"{vocab} chord ids) to {path}")
        return
    paths = write_dataset(out_dir, classes=classes, clips=clips, seconds=seconds, seed=seed)
    click.echo(f"wrote {len(paths)} clips ({classes} classes x {clips}, {seconds:g} s) to {out_dir}")


@features.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--store", required=True, help="Store root: a folder, or a URI pyarrow opens (s3://...).")
@click.option("--dataset", required=True, help="Dataset name inside the store.")
@click.option("--feature-set", "kind", default="mfcc27", show_default=True,
              type=click.Choice(list(FEATURE_KINDS)), help="What each frame holds.")
@click.option("--beat-sync", is_flag=True, help="Average frames between detected beats (own feature set).")
@click.option("--segment-seconds", type=float, default=None,
              help="Cut each clip into segments of this many seconds; segments keep their clip as group.")
@click.option("--test-size", default=0.2, show_default=True,
              help="Fraction of groups held out as the test split (made once per dataset).")
@click.option("--seed", default=0, show_default=True, help="Seed of the test split.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Override a feature parameter (e.g. n_mfcc=20, sr=16000); makes a new feature set.")
@click.option("--address", default=None, help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray).")
@click.option("--no-ray", is_flag=True, help="Extract in this process instead of Ray tasks (debugging).")
@click.option("--dashboard", is_flag=True,
              help="Start the Ray dashboard with the local Ray instance (off: it delays the start by ~2 s, and "
                   "the progress bar shows the extraction). No effect with --address.")
def extract(source: Path, store: str, dataset: str, kind: str, beat_sync: bool, segment_seconds: float | None,
            test_size: float, seed: int, params: tuple[str, ...], address: str | None, no_ray: bool,
            dashboard: bool) -> None:
    """Extract features from SOURCE (an audio folder with one subfolder per class, or a
    manifest CSV with path,label[,split][,group]) into the store.

    Only new or changed files are computed. Bad files are listed in _errors.parquet and
    in the summary; the command fails only when nothing could be extracted.
    """
    from features.extract import FeatureSpec
    from features.runner import extract_audio

    spec = FeatureSpec.create(kind, beat_sync=beat_sync, segment_seconds=segment_seconds,
                              **_parse_params(params))
    summary = extract_audio(source, store=store, dataset=dataset, spec=spec, test_size=test_size,
                            seed=seed, use_ray=not no_ray, address=address, progress=True, dashboard=dashboard)
    click.echo(str(summary))
    if summary.clips_total == 0:
        sys.exit(1)


@features.command(name="import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--store", required=True, help="Store root: a folder, or a URI pyarrow opens.")
@click.option("--dataset", required=True, help="Dataset name inside the store.")
@click.option("--format", "fmt", type=click.Choice(list(FORMATS)), default=None,
              help="Source format (default: from each file's extension).")
@click.option("--feature-set", default="raw", show_default=True, help="Name the imported sequences land under.")
@click.option("--test-size", default=0.2, show_default=True,
              help="Held-out fraction for sources that do not name their own split.")
@click.option("--seed", default=0, show_default=True, help="Seed of the test split.")
@click.option("--tokens/--no-tokens", default=None,
              help="Store the values as token ids (words such as chord ids, embedded by the models) or as "
                   "numbers. Default: tokens when every sequence holds one whole number per step.")
@click.option("--group-column", default=None,
              help="CSV: the column of groups that must not straddle folds or the test split (default: the "
                   "track of a GTZAN-style filename column, e.g. blues.00000 for blues.00000.3.wav).")
@click.option("--groups", "groups", multiple=True, type=click.Path(path_type=Path), metavar="FILE",
              help="Pickle / .ts: a text file with one group per line, one line per item in the file's order "
                   "(e.g. the work each chord window was cut from). Repeat it once per source file.")
def import_(files: tuple[Path, ...], store: str, dataset: str, fmt: str | None, feature_set: str,
            test_size: float, seed: int, tokens: bool | None, group_column: str | None,
            groups: tuple[Path, ...]) -> None:
    """Import sequences that are not audio: pickled (sequence, label) pairs (read with a
    restricted unpickler that refuses anything but plain data), UCR/UEA .ts files (their
    TRAIN/TEST split kept), or tabular feature CSVs (one row = a sequence of one frame).

    Sequences of whole numbers, one per step (chord ids), become a token feature set: the
    values seen in the train split get dense ids (0 = unknown) and the models embed them.
    """
    from features.sequence_import import import_files

    summary = import_files(files, store=store, dataset=dataset, format=fmt, feature_set=feature_set,
                           test_size=test_size, seed=seed, tokens=tokens, group_column=group_column,
                           groups=list(groups) or None)
    click.echo(str(summary))
    if summary.clips_total == 0:
        sys.exit(1)


@features.command()
@click.option("--store", required=True, help="Store root.")
@click.option("--dataset", default=None, help="Only this dataset.")
def info(store: str, dataset: str | None) -> None:
    """A table of datasets, feature sets, clips per class and split, frames and errors."""
    from features.store import FeatureStore

    fs = FeatureStore(store)
    names = [dataset] if dataset else fs.datasets()
    if not names:
        click.echo(f"{store}: no datasets")
        return
    for name in names:
        sets = fs.feature_sets(name)
        if not sets:
            raise SeqsweepError(f"dataset {name!r}", f"must be one of {fs.datasets()} in {store}", name)
        for fset in sets:
            m = fs.manifest(name, fset)
            click.echo(f"{name}/{fset}  D={m['dim']}  clips={m['n_clips']}  frames={m['n_frames']}  "
                       f"errors={m['n_errors']}  updated={m['updated']}")
            if "tokens" in m:
                click.echo(_token_line(m["tokens"]))
            click.echo(_class_table(m))


def _token_line(entry: dict, *, shown: int = 8) -> str:
    """``tokens: vocab_size=V (unknown id 0); id -> value 1->144 2->150 ...``."""
    table = entry.get("id_to_value", [])
    pairs = " ".join(f"{i}->{v}" for i, v in enumerate(table) if v is not None and i <= shown)
    more = f" ... ({len(table) - 1} values)" if len(table) - 1 > shown else ""
    return (f"  tokens: vocab_size={entry.get('vocab_size')} (unknown id {entry.get('unknown_id')}); "
            f"id -> value {pairs}{more}")


def _class_table(manifest: dict) -> str:
    counts = manifest.get("counts", {})
    classes = manifest.get("classes", [])
    width = max([5, *map(len, classes)])
    lines = [f"  {'class':<{width}}  {'train':>6}  {'test':>6}"]
    for c in classes:
        lines.append(f"  {c:<{width}}  {counts.get('train', {}).get(c, 0):>6}  {counts.get('test', {}).get(c, 0):>6}")
    return "\n".join(lines)
