"""`HeadStart`: the driver extracts clips itself while a local Ray instance starts.

Starting Ray takes seconds (its head processes, the dashboard, the first workers), and
extraction cannot use it until then. A `HeadStart` runs on a thread of the driver during
that time: it imports librosa and warms numba up (`features.extract.warm_up`; on a new
machine this compiles librosa's functions once, into numba's cache, which the Ray
workers then read instead of compiling them again each), then extracts clips one at a
time from the front of the work list. `stop` ends it after the clip in hand and hands
back the clips it did not take, for Ray. It waits for the clip in hand, and so for the
warm-up: on a new machine the compile is done once, while Ray starts, and not again by
every worker.

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
        results, rest = head.stop()    # what it extracted; what is left for Ray
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

    def stop(self) -> tuple[list[SourceRows | ItemError], list[tuple[AudioItem, str]]]:
        """Stop after the clip in hand; return (its results, the pairs it did not take).

        A clip that fails is an `ItemError` among the results, as in a Ray task; anything
        else the thread raised is raised here.
        """
        with self._lock:
            self._stop.set()
            rest = list(self._left)
            self._left.clear()
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._results, rest


def head_start_if_ray_starts(work: list[tuple[AudioItem, str]], spec: FeatureSpec) -> HeadStart | None:
    """A running `HeadStart` when this process is not connected to Ray yet (so connecting
    will take a while: a local instance starts); None when it is."""
    import ray

    return None if ray.is_initialized() else HeadStart(work, spec)
