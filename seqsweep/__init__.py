"""The house's shared parts, which every room may import: the project's errors
(`seqsweep.errors`), pydantic's validation errors turned into them (`seqsweep.validation`),
storage I/O over `pyarrow.fs` (`seqsweep.storage`), the names of an experiment's files
(`seqsweep.layout`) and the local Ray runtime (`seqsweep.ray_runtime`).

``seqsweep.cli`` (the ``seqsweep`` command) and ``seqsweep.demo`` sit above the rooms and
import them; nothing else here imports a room. This ``__init__`` imports nothing, so a
room that needs only the errors loads only the errors.
"""
