"""Token sequences as first-class data (issue 11) and group-aware imports (issue 10, item 5).

Chord ids are words, not numbers: the store detects them and keeps an id map, every torch
family embeds them, the classic baselines count them, and an embedded LSTM beats the same
LSTM fed raw ids. Imports take ``--group-column`` (CSV) and ``--groups FILE`` (pickle,
``.ts``) so that windows of one work never straddle a fold or the test split.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from features import FeatureStore, import_files
from features.importers import GroupFile, read_pickle, read_table, track_of
from features.sequences import SequenceSet
from features.synth_tokens import PAD, make_token_sequences, write_token_dataset
from features.tokens import UNKNOWN_ID, TokenVocab, looks_like_tokens
from seqsweep.cli import main
from seqsweep.errors import ConfigError, InputError, StoreError
from trainables import build_model, fit, predict_proba
from trainables.classic.pooled import (
    BIGRAM_BUCKETS,
    DENSE_BIGRAM_VOCAB,
    _vocab_of_width,
    bag_features,
    bag_width,
)
from trainables.configs import DEFAULT_EMBEDDING_RANGE, LSTMConfig
from trainables.training.saved import weights_from_bytes, weights_to_bytes
from trainables.trial.folds import make_plan

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"epochs": 2, "batch_size": 8, "lr": 1e-2, "num_threads": 1, "device": "cpu"}


def cli(*args) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _pickle(path: Path, pairs: list) -> Path:
    path.write_bytes(pickle.dumps(pairs))
    return path


def _token_set(seqs: list[np.ndarray], labels: list[int], vocab_size: int | None) -> SequenceSet:
    ids = np.array([f"s{i}" for i in range(len(seqs))], dtype=object)
    x = [np.asarray(s, dtype=np.float32).reshape(-1, 1) for s in seqs]
    return SequenceSet(x, np.asarray(labels), [f"c{c}" for c in range(max(labels) + 1)], ids, ids,
                       vocab_size=vocab_size)


# ---- the vocabulary ------------------------------------------------------------------------------
def test_vocab_ids_are_dense_stable_and_unknown_is_zero():
    vocab = TokenVocab().extended([144.0, 7.0, 32.0, 7.0])
    assert vocab.values == (7, 32, 144) and vocab.vocab_size == 4
    ids = vocab.encode(np.array([[144.0], [7.0], [99.0], [32.0]], dtype=np.float32))
    assert ids.dtype == np.float32 and ids.ravel().tolist() == [3, 1, UNKNOWN_ID, 2]
    grown = vocab.extended([99.0, 1.0])
    assert grown.values == (7, 32, 144, 1, 99)  # old ids keep their meaning, new ones appended
    assert grown.decode([0, 1, 4, 5, 9]) == [None, 7, 1, 99, None]
    entry = grown.to_manifest()
    assert entry == {"vocab_size": 6, "unknown_id": 0, "id_to_value": [None, 7, 32, 144, 1, 99]}
    assert TokenVocab.from_manifest(json.loads(json.dumps(entry))) == grown
    with pytest.raises(StoreError, match="vocab_size"):
        TokenVocab.from_manifest({**entry, "vocab_size": 3})


def test_token_guess_needs_one_whole_number_per_step():
    assert looks_like_tokens([np.array([[1.0], [-1.0], [5.0]])])
    assert not looks_like_tokens([np.array([[1.0], [2.5]])])
    assert not looks_like_tokens([np.array([[1.0, 2.0]])])  # D = 2
    assert not looks_like_tokens([])


def test_sequence_set_keeps_vocab_size_and_checks_it():
    data = _token_set([[1, 2, 3], [4]], [0, 1], vocab_size=5)
    for view in (data.subset([1, 0]), data.to_padded(), data.to_padded().to_ragged()):
        assert view.vocab_size == 5 and view.is_tokens
    with pytest.raises(InputError, match="D = 1"):
        SequenceSet([np.zeros((2, 3), np.float32)], [0], ["a"], ["g"], ["c"], vocab_size=4)
    with pytest.raises(InputError, match="positive integer"):
        SequenceSet([np.zeros((2, 1), np.float32)], [0], ["a"], ["g"], ["c"], vocab_size=0)


# ---- the synthetic generator ------------------------------------------------------------------------
def test_synth_tokens_are_seeded_padded_and_differ_in_order_more_than_in_counts(tmp_path):
    seqs, labels = make_token_sequences(classes=3, sequences=30, vocab=10, min_length=8, max_length=20, seed=4)
    again, _ = make_token_sequences(classes=3, sequences=30, vocab=10, min_length=8, max_length=20, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(seqs, again))
    assert len(seqs) == 90 and sorted(set(labels)) == [0, 1, 2]
    assert {len(s) for s in seqs} <= set(range(8, 21)) and len({len(s) for s in seqs}) > 3
    values = np.unique(np.concatenate(seqs))
    assert len(values) == 10 and values.min() >= 0 and not np.array_equal(values, np.arange(10))

    # per class: unigram and bigram frequency tables; classes are further apart on bigrams
    def table(k: int, order: int) -> np.ndarray:
        index = {v: i for i, v in enumerate(values)}
        counts = np.zeros((10,) * order)
        for s, y in zip(seqs, labels):
            if y == k:
                ids = [index[v] for v in s]
                for t in range(len(ids) - order + 1):
                    counts[tuple(ids[t:t + order])] += 1
        return counts / counts.sum()

    def distance(order: int) -> float:  # total variation, mean over class pairs
        return np.mean([0.5 * np.abs(table(a, order) - table(b, order)).sum() for a, b in ((0, 1), (0, 2), (1, 2))])

    assert distance(2) > 2 * distance(1)

    path = write_token_dataset(tmp_path, classes=2, sequences=5, vocab=6, min_length=3, max_length=9, seed=1)
    pairs = pickle.loads(path.read_bytes())
    assert len(pairs) == 10 and {len(a) for a, _ in pairs} == {13} and {y for _, y in pairs} == {0, 1}
    assert all(a[-1] == PAD and a.dtype == np.float64 for a, _ in pairs)
    read = read_pickle(path)
    assert not read.errors and all(3 <= r.n_frames <= 9 and (r.frames != PAD).all() for r in read.records)


def test_synth_tokens_cli_writes_what_import_reads(tmp_path):
    out = cli("features", "synth", tmp_path / "data", "--tokens", "--classes", "3", "--clips", "6", "--vocab", "8")
    assert "18 token sequences" in out
    out = cli("features", "import", tmp_path / "data" / "chords.pkl", "--store", tmp_path / "s", "--dataset", "ch")
    assert "tokens: " in out and "18 clips" in out
    info = cli("features", "info", "--store", tmp_path / "s")
    assert "ch/raw  D=1" in info and "tokens: vocab_size=" in info and "(unknown id 0)" in info
    out = cli("features", "import", tmp_path / "data" / "chords.pkl", "--store", tmp_path / "s", "--dataset", "num",
              "--no-tokens")
    assert "tokens" not in out
    assert "tokens" not in cli("features", "info", "--store", tmp_path / "s", "--dataset", "num")
    assert FeatureStore(tmp_path / "s").load("num", "raw").vocab_size is None


# ---- the store knows tokens ---------------------------------------------------------------------------
def test_import_stores_ids_and_the_id_map(tmp_path):
    train = _pickle(tmp_path / "chords_train.pkl",
                    [(np.array([-1, -1, 144, 7, 144, -1.0]), 0), (np.array([32.0, 7, -1]), 1),
                     (np.array([-1, 7.0, 7, 32]), 0), (np.array([144.0, 32]), 1)])
    test = _pickle(tmp_path / "chords_test.pkl", [(np.array([-1, 7, 500, 144, -1.0]), 0), (np.array([99.0]), 1)])
    summary = import_files([train, test], store=tmp_path / "s", dataset="ch")
    assert summary.failed == 0 and any("unknown" in n for n in summary.notes)
    store = FeatureStore(tmp_path / "s")
    manifest = store.manifest("ch", "raw")
    assert manifest["tokens"] == {"vocab_size": 4, "unknown_id": 0, "id_to_value": [None, 7, 32, 144]}
    assert manifest["params"]["tokens"] is True
    tr, te = store.load("ch", "raw", split="train"), store.load("ch", "raw", split="test")
    assert tr.vocab_size == te.vocab_size == 4
    got = {c: s.ravel().tolist() for c, s in zip(tr.clip_ids, tr.x)}
    assert got["chords_train.pkl#0"] == [3, 1, 3] and got["chords_train.pkl#1"] == [2, 1]
    got = {c: s.ravel().tolist() for c, s in zip(te.clip_ids, te.x)}
    assert got == {"chords_test.pkl#0": [1, 0, 3], "chords_test.pkl#1": [0]}  # 500 and 99: never in train

    # a later file extends the vocabulary; stored ids never move
    more = _pickle(tmp_path / "more_train.pkl", [(np.array([500.0, 7]), 0), (np.array([1.0, 144]), 1)])
    summary = import_files([more], store=tmp_path / "s", dataset="ch")
    assert any("grew from 4 to 6" in n for n in summary.notes)
    assert store.vocab("ch", "raw").values == (7, 32, 144, 1, 500)
    tr = store.load("ch", "raw", split="train")
    assert {c: s.ravel().tolist() for c, s in zip(tr.clip_ids, tr.x)}["more_train.pkl#0"] == [5, 1]
    assert tr.vocab_size == 6

    with pytest.raises(StoreError, match="same parameters"):
        import_files([more], store=tmp_path / "s", dataset="ch", tokens=False)


def test_no_tokens_keeps_numbers_and_tokens_refuses_fractions(tmp_path):
    whole = _pickle(tmp_path / "w.pkl", [(np.array([3.0, 4, -1]), 0), (np.array([5.0, 3]), 1)] * 3)
    import_files([whole], store=tmp_path / "s", dataset="w", tokens=False)
    store = FeatureStore(tmp_path / "s")
    assert "tokens" not in store.manifest("w", "raw")
    data = store.load("w", "raw")
    assert data.vocab_size is None and sorted(np.concatenate(data.x).ravel().tolist())[-1] == 5.0

    mixed = _pickle(tmp_path / "m.pkl", [(np.array([3.0, 4]), 0), (np.array([0.5, 3]), 1), (np.array([1.0]), 1)])
    assert "tokens" not in FeatureStore(import_files([mixed], store=tmp_path / "s", dataset="auto").store
                                        ).manifest("auto", "raw")  # the guess: not all whole numbers
    summary = import_files([mixed], store=tmp_path / "s", dataset="forced", tokens=True)
    assert summary.clips_total == 2 and summary.failed == 1
    error = summary.errors[0]
    assert "m.pkl#1" in error.path and "whole number" in error.message and "0.5" in error.message


def test_unknown_ids_read_as_the_unknown_id():
    torch.manual_seed(0)
    net = build_model("cnn1d", {"filters": (4,), "embedding_dim": 3}, input_dim=1, n_classes=2, vocab_size=5).eval()
    lengths = torch.tensor([3])
    with torch.no_grad():
        unseen = net(torch.tensor([[[1.0], [9.0], [-4.0]]]), lengths)
        unknown = net(torch.tensor([[[1.0], [0.0], [0.0]]]), lengths)
    torch.testing.assert_close(unseen, unknown)
    # and through fit / predict_proba: a test set with ids past the training vocabulary
    train = _token_set([[1, 2, 3, 1], [4, 4, 2], [1, 3], [4, 2, 2]], [0, 1, 0, 1], vocab_size=5)
    result = fit("lstm", {"units": (4,)}, train, None, seed=0, train_config=TINY, return_weights=True)
    odd = _token_set([[1, 77, 3], [-1, 4]], [0, 1], vocab_size=5)
    proba = predict_proba("lstm", {"units": (4,)}, result.weights, odd, device="cpu")
    same = predict_proba("lstm", {"units": (4,)}, result.weights,
                         _token_set([[1, 0, 3], [0, 4]], [0, 1], vocab_size=5), device="cpu")
    np.testing.assert_allclose(proba, same, atol=1e-6)


@pytest.fixture(scope="module")
def token_store(tmp_path_factory) -> Path:
    """The synthetic chords imported as a token set: 3 classes x 16 sequences."""
    root = tmp_path_factory.mktemp("tokens")
    path = write_token_dataset(root / "data", classes=3, sequences=16, vocab=10, min_length=6, max_length=16, seed=2)
    import_files([path], store=root / "store", dataset="chords", test_size=0.25)
    return root / "store"


@pytest.mark.parametrize("model", ["lstm", "cnn", "cnn1d", "wavenet"])
def test_every_torch_family_embeds_tokens_from_the_data(token_store, model):
    """No config names a vocabulary: the size comes from the store, and the model embeds."""
    store = FeatureStore(token_store)
    train, test = store.load("chords", "raw", split="train"), store.load("chords", "raw", split="test")
    result = fit(model, {"embedding_dim": 5}, train, test, seed=0, train_config=TINY, return_weights=True)
    table = [k for k in result.weights if k.endswith("embedding.table.weight")]
    assert len(table) == 1 and tuple(result.weights[table[0]].shape) == (train.vocab_size, 5)
    assert np.isfinite(result.proba).all()
    assert "vocab_size" not in LSTMConfig.field_names()


# ---- classic baselines speak tokens -------------------------------------------------------------------
def test_bag_and_bag2_features():
    data = _token_set([[1, 2, 1, 9], [3]], [0, 1], vocab_size=4)  # 9 is out of range: unknown
    bag = bag_features(data, vocab_size=4)
    np.testing.assert_allclose(bag, [[0.25, 0.5, 0.25, 0], [0, 0, 0, 1]])
    both = bag_features(data.to_padded(), vocab_size=4, bigrams=True)
    assert both.shape == (2, 4 + 16) == (2, bag_width(4, bigrams=True))
    pairs = both[0, 4:].reshape(4, 4) * 3  # (1,2), (2,1), (1,0): counts / (4 - 1)
    assert pairs[1, 2] == pairs[2, 1] == pairs[1, 0] == 1 and pairs.sum() == 3
    assert not both[1, 4:].any()  # a length-1 sequence has no pair
    big = DENSE_BIGRAM_VOCAB + 10
    wide = bag_features(_token_set([[1, 2, 3, 70]], [0], vocab_size=big), vocab_size=big, bigrams=True)
    assert wide.shape == (1, big + BIGRAM_BUCKETS) and wide[0, big:].sum() == pytest.approx(1.0)
    for v in (3, DENSE_BIGRAM_VOCAB, big, 500):
        for bigrams in (False, True):
            assert _vocab_of_width(bag_width(v, bigrams=bigrams), bigrams=bigrams) == v


def test_classic_pooling_auto_bag_bag2_and_saved_form(token_store):
    store = FeatureStore(token_store)
    train, test = store.load("chords", "raw", split="train"), store.load("chords", "raw", split="test")
    v = train.vocab_size
    widths = {}
    for pooling in ("auto", "bag", "bag2", "meanstd"):
        result = fit("random_forest", {"n_estimators": 20, "pooling": pooling}, train, test, seed=0,
                     return_weights=True)
        widths[pooling] = result.weights.features_.shape[1]
        # the saved form is plain arrays; loaded back, it predicts the same
        suffix, blob = weights_to_bytes(result.weights)
        loaded = weights_from_bytes(suffix, blob, model="random_forest",
                                    flat_config={"n_estimators": 20, "pooling": pooling}, seed=0, where="x")
        np.testing.assert_allclose(loaded.predict_proba(test), result.proba)
    assert widths == {"auto": v, "bag": v, "bag2": v + v * v, "meanstd": 2}
    knn = fit("knn", {"n_neighbors": 3}, train, test, seed=0, return_weights=True)
    assert knn.weights.features_.shape[1] == v

    real = dataclasses.replace(train, vocab_size=None)
    assert fit("knn", None, real, None, seed=0, return_weights=True).weights.features_.shape[1] == 2
    with pytest.raises(ConfigError, match="token feature set") as info:
        fit("random_forest", {"pooling": "bag"}, real, None, seed=0)
    assert info.value.where == "random_forest.pooling"


# ---- groups -------------------------------------------------------------------------------------------
def test_track_of_gtzan_segments():
    assert track_of("blues.00000.3.wav") == "blues.00000"
    assert track_of("rock.00042.12.au") == "rock.00042"
    assert track_of("blues.00000.wav") is None and track_of("x.wav") is None


def _gtzan_3s(path: Path, *, work_column: bool) -> Path:
    """A GTZAN-style 3-second table: 2 genres x 3 tracks x 4 segments."""
    head = "filename,length,a,b," + ("work," if work_column else "") + "label\n"
    rows = "".join(f"{g}.0000{t}.{s}.wav,66149,{t + s * 0.1},{s}," + (f"w{t}," if work_column else "") + f"{g}\n"
                   for g in ("blues", "rock") for t in range(3) for s in range(4))
    path.write_text(head + rows)
    return path


def test_csv_groups_from_the_filename_or_a_group_column(tmp_path):
    plain = _gtzan_3s(tmp_path / "features_3_sec.csv", work_column=False)
    res = read_table(plain)
    assert [r.group for r in res.records[:5]] == ["blues.00000"] * 4 + ["blues.00001"]
    assert res.columns == ["a", "b"]
    import_files([plain], store=tmp_path / "s", dataset="g3", test_size=0.34)
    data = FeatureStore(tmp_path / "s").load("g3", "raw")
    assert set(data.groups) == {f"{g}.0000{t}" for g in ("blues", "rock") for t in range(3)}
    test = FeatureStore(tmp_path / "s").load("g3", "raw", split="test")
    assert len(test) % 4 == 0 and len(test) > 0  # whole tracks only

    worked = _gtzan_3s(tmp_path / "worked.csv", work_column=True)
    out = cli("features", "import", worked, "--store", tmp_path / "s", "--dataset", "w3", "--group-column", "work")
    assert "24 clips" in out
    assert set(FeatureStore(tmp_path / "s").load("w3", "raw").groups) == {"w0", "w1", "w2"}


def test_csv_missing_group_column_names_it(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,label\n1.5,x\n2.5,y\n")
    with pytest.raises(InputError) as info:
        import_files([path], store=tmp_path / "s", dataset="t", group_column="track")
    message = str(info.value)
    assert "'track'" in message and "group column" in message and "columns found: a, label" in message


def _windows(tmp_path: Path, n_works: int = 12, per_work: int = 4) -> tuple[Path, Path]:
    """Chord windows cut from works: every window of work w is labelled w % 3."""
    rng = np.random.default_rng(0)
    pairs, groups = [], []
    for w in range(n_works):
        for _ in range(per_work):
            pairs.append((np.concatenate([[-1.0], rng.integers(0, 20, size=6).astype(float), [-1.0]]), w % 3))
            groups.append(f"work{w:02d}")
    path = _pickle(tmp_path / "windows.pkl", pairs)
    groups_file = tmp_path / "windows.groups"
    groups_file.write_text("\n".join(groups) + "\n")
    return path, groups_file


def test_groups_file_reaches_the_store_the_test_split_and_the_folds(tmp_path):
    path, groups_file = _windows(tmp_path)
    cli("features", "import", path, "--store", tmp_path / "s", "--dataset", "win", "--groups", groups_file,
        "--test-size", "0.25")
    store = FeatureStore(tmp_path / "s")
    train, test = store.load("win", "raw", split="train"), store.load("win", "raw", split="test")
    assert set(train.groups) | set(test.groups) == {f"work{w:02d}" for w in range(12)}
    assert not set(train.groups) & set(test.groups)  # no work on both sides of the test split
    assert len(test) == 12  # three whole works of four windows
    plan = make_plan(train, folds=3, seeds=2)
    for f in plan.fits:
        assert not set(train.groups[f.train]) & set(train.groups[f.valid])

    # the same source with another groups file is imported again, not skipped as unchanged
    groups_file.write_text("\n".join(f"piece{i // 2}" for i in range(48)))
    summary = import_files([path], store=tmp_path / "s", dataset="win", groups=[groups_file])
    assert summary.unchanged == 0 and summary.added == 1
    assert set(store.load("win", "raw").groups) == {f"piece{i}" for i in range(24)}


def test_groups_file_errors_name_the_file_rule_and_value(tmp_path):
    path, groups_file = _windows(tmp_path)
    groups_file.write_text("a\nb\n")
    with pytest.raises(InputError) as info:
        import_files([path], store=tmp_path / "s", dataset="bad", groups=[groups_file])
    assert str(groups_file) in str(info.value) and "one line per item" in str(info.value)
    assert "48 items" in str(info.value) and "(got 2 lines)" in str(info.value)
    with pytest.raises(InputError) as info:
        GroupFile.read(groups_file.with_name("missing.txt")).for_items(1, source=path)
    assert "missing.txt" in info.value.where
    groups_file.write_text("a\n\nb\n")
    with pytest.raises(InputError, match="must name a group") as info:
        GroupFile.read(groups_file)
    assert info.value.where.endswith(":2")
    with pytest.raises(ConfigError, match="one groups file per source"):
        import_files([path, path], store=tmp_path / "s", dataset="bad", groups=[groups_file])
    csv = tmp_path / "t.csv"
    csv.write_text("a,label\n1,x\n")
    groups_file.write_text("g\n")
    with pytest.raises(ConfigError, match="--group-column"):
        import_files([csv], store=tmp_path / "s", dataset="bad", groups=[groups_file])
    with pytest.raises(ConfigError, match="CSV sources"):
        import_files([path], store=tmp_path / "s", dataset="bad", group_column="work")


def test_ts_groups_file(tmp_path):
    ts = tmp_path / "Toy_TRAIN.ts"
    ts.write_text("@problemName Toy\n@univariate true\n@classLabel true up down\n@data\n"
                  "1,2,3:up\n3,2,1:down\nx,1:up\n1,2:up\n")
    groups = tmp_path / "toy.groups"
    groups.write_text("a\na\nb\nb\n")  # the bad third line still has its group line
    summary = import_files([ts], store=tmp_path / "s", dataset="toy", groups=[groups])
    assert summary.failed == 1 and summary.clips_total == 3
    data = FeatureStore(tmp_path / "s").load("toy", "raw")
    assert dict(zip(data.clip_ids, data.groups)) == {"Toy_TRAIN.ts#0": "a", "Toy_TRAIN.ts#1": "a",
                                                     "Toy_TRAIN.ts#3": "b"}


# ---- the search range, and the measured claim -------------------------------------------------------------
def test_default_embedding_range_is_a_valid_spec_range():
    from search.ranges import Param

    param = Param.parse("models.lstm.embedding_dim", dict(DEFAULT_EMBEDDING_RANGE))
    assert param.kind == "int" and param.log and param.low >= 1


def test_embedded_lstm_beats_the_same_lstm_fed_raw_ids():
    """Same data, seeds, architecture and training: only the embedding differs (the raw one
    reads each id as a standardised number). Classes differ only in transitions."""
    seqs, labels = make_token_sequences(classes=3, sequences=40, vocab=12, min_length=12, max_length=30,
                                        follow=0.8, skew=0.0, seed=0)
    vocab = TokenVocab().extended(np.concatenate(seqs))
    data = _token_set([vocab.encode(s[:, None].astype(np.float32)) for s in seqs], labels, vocab.vocab_size)
    rows = np.arange(len(data))
    train, valid = data.subset(rows % 4 != 0), data.subset(rows % 4 == 0)
    raw_train, raw_valid = (dataclasses.replace(s, vocab_size=None) for s in (train, valid))
    config = {"units": (16,), "embedding_dim": 8, "pooling": "mean"}
    tc = {"epochs": 25, "lr": 1e-2, "batch_size": 16, "num_threads": 1, "device": "cpu"}
    embedded = [fit("lstm", config, train, valid, seed=s, train_config=tc).metrics["balanced_accuracy"]
                for s in (0, 1)]
    raw = [fit("lstm", config, raw_train, raw_valid, seed=s, train_config=tc).metrics["balanced_accuracy"]
           for s in (0, 1)]
    assert np.mean(embedded) >= 0.8, embedded
    assert np.mean(embedded) >= np.mean(raw) + 0.1, (embedded, raw)
