"""What a source says about folds: its groups (`GroupFile`, `track_of`) and its split.

Groups are what must never straddle two folds or the train/test split. By default each
record is its own group. A pickle or ``.ts`` source takes a `GroupFile` (one group per
line, one line per item in the file's order: the work that chord windows were cut
from); a CSV takes a ``group_column``, and without one a GTZAN-style ``filename`` column
(``blues.00000.3.wav``, segment 3 of track ``blues.00000``) gives the track as group
(`track_of`).

Split: a file whose name (stem, lower-cased) is ``train`` / ``test`` or ends with
``<sep>train`` / ``<sep>test`` (``sep`` one of ``_ - . space``: ``chords_test.pkl``,
``JapaneseVowels_TRAIN.ts``) gives its records that split (`split_from_name`);
otherwise split is None (``contest.pkl`` is not a test file).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from features.importers.rules import check_file
from seqsweep.errors import InputError

__all__ = ["GroupFile", "split_from_name", "track_of"]


@dataclass(frozen=True)
class GroupFile:
    """The groups of one pickle or ``.ts`` source's items, read from a text file.

    One group per line, one line per item of the source, in the source's order (bad items
    included, as item indices count them); surrounding spaces are dropped and a final
    newline is optional. Chord windows cut from one work share that work's line.

    Attributes
    ----------
    path : the groups file, as named in errors.
    groups : its groups, one per line.
    """

    path: str
    groups: tuple[str, ...]

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> GroupFile:
        """Read ``path``; `InputError` for a missing file or an empty line (naming the line)."""
        path = Path(path)
        check_file(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(str(path), "a groups file must be readable UTF-8 text",
                             f"{type(exc).__name__}: {exc}") from exc
        lines = text.splitlines()
        groups = tuple(line.strip() for line in lines)
        for n, group in enumerate(groups, start=1):
            if not group:
                raise InputError(f"{path}:{n}", "every line of a groups file must name a group "
                                 "(one group per item, in the source's order)", "an empty line")
        return cls(str(path), groups)

    def for_items(self, n_items: int, *, source: str | os.PathLike[str]) -> tuple[str, ...]:
        """The groups, checked to be one per item of ``source`` (``n_items`` of them)."""
        if len(self.groups) != n_items:
            raise InputError(self.path, f"a groups file needs one line per item of {source} "
                             f"({n_items} items, in the file's order)", f"{len(self.groups)} lines")
        return self.groups


_SPLIT_RE = re.compile(r"(?:^|[_\-. ])(train|test)$")


def split_from_name(name: str) -> str | None:
    """``"train"`` / ``"test"`` when a file stem is or ends with it after a separator.

    >>> split_from_name("chords_test"), split_from_name("JapaneseVowels_TRAIN")
    ('test', 'train')
    >>> split_from_name("contest") is None
    True
    """
    m = _SPLIT_RE.search(name.lower())
    return m.group(1) if m else None


_TRACK_RE = re.compile(r"^(.+\.\d+)\.\d+\.[A-Za-z0-9]+$")


def track_of(filename: str) -> str | None:
    """The track a GTZAN-style segment file name belongs to, or None if it names no segment.

    >>> track_of("blues.00000.3.wav"), track_of("blues.00000.wav")
    ('blues.00000', None)
    """
    m = _TRACK_RE.match(filename.strip())
    return m.group(1) if m else None
