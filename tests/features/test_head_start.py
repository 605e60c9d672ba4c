"""The driver's head start (`features.head_start.HeadStart`): it extracts clips while Ray
starts and until Ray's first result, shares one work list with the Ray tasks (no clip
lost or extracted twice), and what it extracts is what a Ray worker extracts."""

from __future__ import annotations

import time

import numpy as np

from features import FeatureSpec, FeatureStore, extract_audio
from features.audio import discover_audio
from features.head_start import HeadStart, head_start_if_ray_starts
from features.rows import ItemError


def test_head_start_splits_the_work_without_loss_or_overlap(synth_dir):
    items, _ = discover_audio(synth_dir)
    work = [(item, "train") for item in items[:8]]
    spec = FeatureSpec.create("mfcc27")
    head = HeadStart(work, spec)
    time.sleep(0.5)
    taken = head.take(2)  # Ray's first chunk, while the thread goes on
    results = head.stop()
    rest = head.take(100)
    assert len(results) >= 1  # the clip in hand is finished, not dropped
    done = [r.source for r in results]
    sources = [item.source for item, _ in taken + rest]
    assert sorted(done + sources) == sorted(item.source for item, _ in work)  # each clip once
    assert not any(isinstance(r, ItemError) for r in results)
    assert head.take(1) == [] and HeadStart([], spec).stop() == []


def test_extraction_while_ray_starts_equals_in_process(ray_session, synth_dir, tmp_path, monkeypatch):
    """Ray "starts" (it is "up" once the driver has extracted its first clip, whatever this
    machine's speed): the driver extracts some clips meanwhile, Ray the rest, and the store
    holds what an in-process run writes."""
    import features.runner
    import seqsweep.ray_runtime

    taken: list[int] = []
    heads: list[HeadStart] = []
    stop = HeadStart.stop

    def counting_stop(self):
        results = stop(self)
        taken.append(len(results))
        return results

    def ray_starts(address=None, **kw):  # as if no Ray were running yet: up after the first clip
        deadline = time.monotonic() + 120
        while not (heads and heads[0]._results) and time.monotonic() < deadline:
            time.sleep(0.01)

    def head_start(work, spec):
        heads.append(HeadStart(work, spec))
        return heads[-1]

    monkeypatch.setattr(HeadStart, "stop", counting_stop)
    monkeypatch.setattr(seqsweep.ray_runtime, "ensure_ray", ray_starts)
    spec = FeatureSpec.create("mfcc27")
    assert head_start_if_ray_starts([], spec) is None  # Ray runs: nothing to overlap
    monkeypatch.setattr(features.runner, "head_start_if_ray_starts", head_start)
    summary = extract_audio(synth_dir, store=tmp_path / "ray", dataset="d", spec=spec, progress=False)
    monkeypatch.undo()
    assert taken and 1 <= taken[0] < summary.added, taken  # both the driver and Ray extracted clips
    extract_audio(synth_dir, store=tmp_path / "local", dataset="d", spec=spec, use_ray=False, progress=False)
    a = FeatureStore(tmp_path / "ray").load("d", spec.name, padded=True)
    b = FeatureStore(tmp_path / "local").load("d", spec.name, padded=True)
    assert summary.failed == 0 and list(a.clip_ids) == list(b.clip_ids)
    # equal up to float rounding: Ray's workers run one BLAS thread, this process may run more
    assert np.allclose(a.x, b.x, rtol=1e-5, atol=1e-3) and np.array_equal(a.y, b.y)
