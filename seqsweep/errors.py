"""The project's exceptions: one root, a few kinds, messages that tell the fix.

Every room raises these and imports them from here. A message names *where* (a file or a field),
the *rule* that was broken and the *value* found, in that order::

    InputError("genres/rock/rock.00003.wav", "audio must be non-empty", "0 samples")
    -> genres/rock/rock.00003.wav: audio must be non-empty (got 0 samples)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

__all__ = [
    "SeqsweepError",
    "InputError",
    "ConfigError",
    "StoreError",
    "TrainingError",
]


class SeqsweepError(Exception):
    """Root of every error seqsweep raises on purpose.

    Parameters
    ----------
    where : the file, field or key the problem is in.
    rule : what should have been true.
    value : what was found instead (``repr``-ed unless already a string).
    """

    def __init__(self, where: str, rule: str, value: object = None) -> None:
        self.where = str(where)
        self.rule = rule
        self.value = value
        shown = "" if value is None else f" (got {value if isinstance(value, str) else repr(value)})"
        super().__init__(f"{self.where}: {rule}{shown}")

    def __reduce__(self):  # survive pickling across Ray workers with all three fields
        return (type(self), (self.where, self.rule, self.value))


class InputError(SeqsweepError):
    """Bad data: a corrupt or empty audio file, a malformed source file, too few clips."""


class ConfigError(SeqsweepError, ValueError):
    """A bad option, parameter or sweep-spec key: an unknown name, a value out of range.

    ``more``: the other settings found broken by the same check, each a `ConfigError`; the
    message lists them after the first, one a line.
    """

    def __init__(self, where: str, rule: str, value: object = None, *, more: Sequence[ConfigError] = ()) -> None:
        super().__init__(where, rule, value)
        self.more = tuple(more)
        if self.more:
            self.args = ("\n".join([self.args[0], *(str(e) for e in self.more)]),)

    def __reduce__(self):
        return (functools.partial(type(self), more=self.more), (self.where, self.rule, self.value))


class StoreError(SeqsweepError):
    """The feature store is missing, inconsistent, or asked for something it does not hold."""


class TrainingError(SeqsweepError):
    """A fit that cannot go on: a NaN or infinite loss, out of memory."""
