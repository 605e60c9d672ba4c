"""`HeadStart`: the driver extracts clips itself while a local Ray instance starts.

Starting Ray takes seconds (its head processes, the dashboard, the first workers), and
extraction cannot use it until then. A `HeadStart` runs on a thread of the driver during
that time: it imports librosa and warms numba up (`features.extract.warm_up`; on a new
machine this compiles librosa's functions once, into numba's cache, which the Ray
workers then read instead of compiling them again each), then extracts clips one at a
time from the front of the work list. Once Ray is up, the caller `take`s chunks for Ray
tasks from the same list, and the thread goes on until `stop`: new Ray workers spend
their first seconds importing librosa and reading numba's cache, and the driver's clips
fill that time (`features.runner` stops it at Ray's first result). `stop` ends it after
the clip in hand and hands back what it extracted. It waits for the clip in hand, and so
for the warm-up: on a new machine the compile is done once, while Ray starts, and not
again by every worker.

The thread spends its time in numpy, librosa and numba, and `ray.init` in the main
thread mostly waits on the processes it started, so the two overlap.
"""

from __future__ import annotations

import threading
from collections import deque

from features.audio import AudioItem
from features.extract import FeatureSpec
from features.rows import ItemError, SourceRows
from features.worker import _extract_chunk

__all__ = ["HeadStart", "head_start_if_ray_starts"]


class HeadStart:
    """Extract ``work`` (clip, split) pairs on a driver thread until `stop`.

    Use::

        head = HeadStart(work, spec)   # the thread starts at once
        ensure_ray(address)            # meanwhile
        chunk = head.take(8)           # up to 8 clips for a Ray task (the thread goes on)
        results = head.stop()          # what it extracted (take() still hands out the rest)
    """

    def __init__(self, work: list[tuple[AudioItem, str]], spec: FeatureSpec) -> None:
        self._left = deque(work)
        self._spec = spec
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._results: list[SourceRows | ItemError] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="seqsweep-extract-head-start", daemon=True)
        self._thread.start()

    def _next(self) -> tuple[AudioItem, str] | None:
        with self._lock:
            if self._stop.is_set() or not self._left:
                return None
            return self._left.popleft()

    def _run(self) -> None:
        # One BLAS thread, as in a Ray worker. More than one is unsafe here: while this
        # thread is inside a BLAS call, `ray.init` on the main thread forks its processes,
        # and OpenBLAS's fork handler shuts its thread pool down under the running call,
        # which then spins forever (seen here: a demo stuck 10 minutes in librosa's
        # melspectrogram -> numpy tensordot). With one thread, OpenBLAS uses no pool.
        from threadpoolctl import threadpool_limits

        try:
            with threadpool_limits(limits=1, user_api="blas"):
                while (pair := self._next()) is not None:
                    self._results.extend(_extract_chunk([pair], self._spec))  # warms up on the first
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by stop()
            self._error = exc

    def take(self, n: int) -> list[tuple[AudioItem, str]]:
        """Up to ``n`` pairs from the front of the list that neither the thread nor an
        earlier `take` has taken (empty when none is left)."""
        with self._lock:
            return [self._left.popleft() for _ in range(min(n, len(self._left)))]

    def stop(self) -> list[SourceRows | ItemError]:
        """Stop after the clip in hand; return what the thread extracted. The pairs it did
        not take stay for `take`.

        A clip that fails is an `ItemError` among the results, as in a Ray task; anything
        else the thread raised is raised here.
        """
        self._stop.set()
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._results


def head_start_if_ray_starts(work: list[tuple[AudioItem, str]], spec: FeatureSpec) -> HeadStart | None:
    """A running `HeadStart` when this process is not connected to Ray yet (so connecting
    will take a while: a local instance starts); None when it is."""
    import ray

    return None if ray.is_initialized() else HeadStart(work, spec)
