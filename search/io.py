"""Small files in an experiment folder, local or at a URI (s3://, gs://, file://), written
atomically: to a temporary name beside the target, then renamed into place."""

from __future__ import annotations

import os
import uuid

__all__ = ["write_bytes_atomic", "read_bytes"]


def write_bytes_atomic(data: bytes, path: str) -> None:
    if "://" in path:
        import pyarrow.fs as pafs

        fs, fpath = pafs.FileSystem.from_uri(path)
        fs.create_dir(fpath.rsplit("/", 1)[0], recursive=True)
        tmp = f"{fpath}.tmp-{uuid.uuid4().hex[:8]}"
        with fs.open_output_stream(tmp) as out:
            out.write(data)
        fs.move(tmp, fpath)  # a rename on local and NFS paths; copy + delete on object stores
        return
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def read_bytes(path: str) -> bytes | None:
    """The file's bytes, or None if there is no such file."""
    if "://" in path:
        import pyarrow.fs as pafs

        fs, fpath = pafs.FileSystem.from_uri(path)
        if fs.get_file_info(fpath).type == pafs.FileType.NotFound:
            return None
        with fs.open_input_stream(fpath) as fh:
            return fh.read()
    if not os.path.exists(path):
        return None
    with open(path, "rb") as fh:
        return fh.read()
