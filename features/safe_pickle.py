"""Load pickles that hold only plain data, refusing every other global before it runs.

``pickle.load`` runs whatever callable a pickle names (``os.system``, ``eval``, any
class's ``__reduce__``), so reading a pickle from someone else is running their code.
`PlainUnpickler` overrides `pickle.Unpickler.find_class`, the one door through which a
pickle reaches a global, and opens it only for what plain data needs:

* builtin lists, tuples, dicts, strings, bytes, ints, floats, bools and None: these
  are pickle opcodes and need no global at all;
* numpy arrays, dtypes and scalars, written by numpy 1.x or 2.x, with any protocol:

  =========================================  ==========================================
  global                                     why
  =========================================  ==========================================
  ``numpy.ndarray``, ``numpy.dtype``         the array class and its dtype
  ``numpy[._]core.multiarray._reconstruct``  rebuilds an ndarray (protocols 2-4, and
                                             object arrays under protocol 5)
  ``numpy[._]core.numeric._frombuffer``      rebuilds an ndarray from an out-of-band or
                                             in-band buffer (protocol 5, non-object)
  ``numpy[._]core.multiarray.scalar``        rebuilds a numpy scalar (``np.float64(1)``)
  ``_codecs.encode``                         protocol 2 writes ``bytes`` (and so every
                                             array's raw data) as ``encode(str,
                                             "latin1")``; only that encoding is let
                                             through
  =========================================  ==========================================

Nothing else. Object arrays (``dtype=object``, e.g. an array of arrays) need no extra
global: their elements are pickled one by one and go through the same door, so an
object array of arrays loads and an object array holding anything else is refused.
numpy types themselves (``np.int64`` the class, ``np.random.Generator``), complex
numbers and every user class are refused. Sets are a corner: protocols 4 and 5 write
them with opcodes of their own (no global), so they load; protocols 0-3 write them as
a call to ``builtins.set``, which is refused. The readers in `features.importers` reject
a set where a sequence or label should be either way.

A refused global raises `InputError` naming the file, the rule and ``"global
module.name"`` from inside `find_class`, before the object it names is ever called.
"""

from __future__ import annotations

import codecs
import importlib
import io
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from seqsweep.errors import InputError

__all__ = ["PLAIN_DATA_RULE", "PlainUnpickler", "load_plain_pickle", "loads_plain_pickle"]

PLAIN_DATA_RULE = (
    "a pickle may hold only numpy arrays, lists, tuples, dicts, strings, bytes and numbers"
)

# (module, name) as written in the pickle -> (candidate modules to import, attribute).
# numpy 2 moved numpy.core to numpy._core (numpy.core is a shim that warns on use) and
# numpy 1.26 ships a numpy._core shim for numpy 2 pickles; both spellings are accepted
# and resolved to whichever module this numpy has, preferring numpy._core.
_NUMPY_ALLOWED: dict[tuple[str, str], tuple[tuple[str, ...], str]] = {}
for _sub, _name in (
    ("multiarray", "_reconstruct"),
    ("multiarray", "scalar"),
    ("numeric", "_frombuffer"),
):
    for _root in ("numpy._core", "numpy.core"):
        _NUMPY_ALLOWED[(f"{_root}.{_sub}", _name)] = (
            (f"numpy._core.{_sub}", f"numpy.core.{_sub}"),
            _name,
        )
_NUMPY_ALLOWED[("numpy", "ndarray")] = (("numpy",), "ndarray")
_NUMPY_ALLOWED[("numpy", "dtype")] = (("numpy",), "dtype")


def _latin1_encode(where: str) -> Callable[..., bytes]:
    """``_codecs.encode`` limited to the one use protocol 2 makes of it: str -> latin-1 bytes."""

    def encode(obj: object, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        try:
            latin1 = codecs.lookup(encoding).name == "iso8859-1"
        except (LookupError, TypeError):
            latin1 = False
        if not (isinstance(obj, str) and latin1):
            raise InputError(
                where,
                "a pickle may call _codecs.encode only to turn a str into latin-1 bytes",
                f"encode({type(obj).__name__}, {encoding!r})",
            )
        return codecs.encode(obj, "latin-1", errors)

    return encode


class PlainUnpickler(pickle.Unpickler):
    """A `pickle.Unpickler` whose `find_class` admits only the globals plain data needs.

    Parameters
    ----------
    file : a binary file object positioned at the pickle.
    where : the name used in error messages (the file's path).
    """

    def __init__(self, file: BinaryIO, *, where: str) -> None:
        super().__init__(file)
        self.where = where

    def find_class(self, module: str, name: str) -> Any:
        """Return the allowed global ``module.name``; raise `InputError` for any other."""
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode(self.where)
        entry = _NUMPY_ALLOWED.get((module, name))
        if entry is None:
            raise InputError(self.where, PLAIN_DATA_RULE, f"global {module}.{name}")
        candidates, attr = entry
        for candidate in candidates:
            try:
                return getattr(importlib.import_module(candidate), attr)
            except (ImportError, AttributeError):
                continue
        raise InputError(  # pragma: no cover - only on a numpy that has neither spelling
            self.where, "this numpy cannot rebuild the pickled array", f"global {module}.{name}"
        )


def _load(file: BinaryIO, where: str) -> object:
    try:
        return PlainUnpickler(file, where=where).load()
    except InputError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, MemoryError, OverflowError, UnicodeDecodeError) as exc:
        raise InputError(
            where, "must be a readable pickle", f"{type(exc).__name__}: {exc}"
        ) from exc


def load_plain_pickle(path: str | os.PathLike[str]) -> object:
    """Read one pickled object from ``path``, allowing only plain data (see the module doc).

    Parameters
    ----------
    path : the pickle file.

    Returns
    -------
    The unpickled object: nested lists / tuples / dicts of numpy arrays, numpy scalars,
    strings, bytes, numbers, bools and None.

    Raises
    ------
    InputError : the file is missing or unreadable, is not a pickle, or names a global
        outside the allowed set (``value`` is ``"global module.name"``); nothing the
        pickle names outside that set is ever called.
    """
    where = str(path)
    try:
        with Path(path).open("rb") as fh:
            return _load(fh, where)
    except OSError as exc:
        raise InputError(where, "must be a readable file", f"{type(exc).__name__}: {exc}") from exc


def loads_plain_pickle(data: bytes, *, where: str = "<bytes>") -> object:
    """`load_plain_pickle` for a pickle already in memory; ``where`` names it in errors."""
    return _load(io.BytesIO(data), where)
