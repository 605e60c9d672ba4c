"""Files local or at a URI (``s3://``, ``gs://``, ``file://``), through `pyarrow.fs`: the one
place every room reads, lists and writes them (the feature store, experiment folders).

A local path is made absolute; a URI is opened with `pyarrow.fs.FileSystem.from_uri`, so
wherever Ray Tune can store an experiment, these functions reach it. Writes are atomic:
the bytes go to a temporary name beside the target, then are renamed into place (a rename
on local and NFS paths; on object stores a copy and delete, where a reader sees the old
object or the whole new one).
"""

from __future__ import annotations

import os
import uuid

__all__ = ["TEMPORARY", "filesystem", "write_atomic", "write_bytes_atomic", "write_csv_atomic", "read_bytes",
           "exists", "is_dir", "list_names", "remove", "join", "resolve"]


#: marks the temporary name a write goes to before its rename (a killed writer may leave one)
TEMPORARY = ".tmp-"


def resolve(path: str | os.PathLike) -> str:
    """A URI as given (without a trailing ``/``); a local path made absolute."""
    text = os.fspath(path)
    return text.rstrip("/") if "://" in text else os.path.abspath(text)


def join(base: str, *parts: str) -> str:
    """``base/part/...`` for a local path or a URI."""
    return "/".join([base.rstrip("/"), *[p.strip("/") for p in parts]])


def filesystem(path: str | os.PathLike):
    """``(pyarrow.fs.FileSystem, path inside it)`` for a local path or a URI."""
    import pyarrow.fs as pafs

    text = os.fspath(path)
    if "://" in text:
        fs, inner = pafs.FileSystem.from_uri(text)
        return fs, inner.rstrip("/") or "/"
    return pafs.LocalFileSystem(), os.path.abspath(text)



def _info(path: str):
    fs, fpath = filesystem(path)
    return fs.get_file_info(fpath)


def exists(path: str) -> bool:
    import pyarrow.fs as pafs

    return _info(path).type != pafs.FileType.NotFound


def is_dir(path: str) -> bool:
    import pyarrow.fs as pafs

    return _info(path).type == pafs.FileType.Directory


def list_names(path: str) -> list[str]:
    """Names of the entries directly in folder ``path``, sorted ([] if it does not exist)."""
    import pyarrow.fs as pafs

    fs, fpath = filesystem(path)
    if fs.get_file_info(fpath).type != pafs.FileType.Directory:
        return []
    return sorted(info.base_name for info in fs.get_file_info(pafs.FileSelector(fpath)))


def remove(path: str) -> None:
    fs, fpath = filesystem(path)
    fs.delete_file(fpath)


def write_atomic(fs, path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` in filesystem ``fs`` under a temporary name beside it, then
    rename it into place (locally after an fsync, so a crash never leaves a renamed file
    without its bytes)."""
    import pyarrow.fs as pafs

    tmp = f"{path}{TEMPORARY}{uuid.uuid4().hex[:8]}"
    if isinstance(fs, pafs.LocalFileSystem):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return
    parent = path.rsplit("/", 1)[0]
    if parent:
        fs.create_dir(parent, recursive=True)
    with fs.open_output_stream(tmp) as out:
        out.write(data)
    fs.move(tmp, path)


def write_bytes_atomic(data: bytes, path: str) -> None:
    """Write ``data`` to ``path`` (a local path or a URI) atomically: `write_atomic`."""
    write_atomic(*filesystem(path), data)


def write_csv_atomic(frame, path: str) -> None:
    """Write the pandas DataFrame ``frame`` as CSV (no index) to ``path`` atomically:
    `write_bytes_atomic`."""
    write_bytes_atomic(frame.to_csv(index=False).encode(), path)


def read_bytes(path: str) -> bytes | None:
    """The file's bytes, or None if there is no such file."""
    import pyarrow.fs as pafs

    fs, fpath = filesystem(path)
    if fs.get_file_info(fpath).type == pafs.FileType.NotFound:
        return None
    with fs.open_input_stream(fpath) as fh:
        return fh.read()
