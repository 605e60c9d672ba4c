"""The sweep spec's ``ensemble`` section, checked against the registry of methods, and the
sweep spec as the results room reads it.

The search room runs trials and never reads ``ensemble``: its `search.spec.SweepSpec` keeps
that section as the mapping written. `ResultsSpec` is the same spec with the section typed
as `EnsembleSpec`, so one validation checks every section, in the same order, with the same
errors (``<file>: ensemble.methods: must be one of [...] (got median)``). It is what
``seqsweep sweep run`` reads (the command line hands search `load_spec`, so a bad section
stops the sweep before any trial) and what the results room reads from ``sweep.json``
(`ResultsSpec.load`); a `ResultsSpec` saves the section with every default filled in.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from pydantic import Field, PlainValidator, field_validator

from results.ensemble.methods import DEFAULT_METHODS, FORMS
from search.section import Section
from search.spec import SweepSpec, load_spec as load_search_spec
from seqsweep.validation import PlainInt, one_of

__all__ = ["EnsembleSpec", "ResultsSpec", "load_spec"]


class EnsembleSpec(Section):
    """``ensemble``: the ``top_k`` trials the top-k methods join, the ``methods`` built (among
    `DEFAULT_METHODS`; a list or ``"soft,max"``), how a member is deployed (``refit``, one of
    `FORMS`), whether the `FIT_WEIGHTS_METHODS` are built too (``fit_weights``), and greedy's
    ``max_size``."""

    top_k: PlainInt = Field(5, ge=1)
    methods: tuple[one_of(DEFAULT_METHODS), ...] = DEFAULT_METHODS  # or "soft,max"
    refit: one_of(FORMS) = "bag"  # bag: deploy each member's CV fold models; full: refit on all train rows
    fit_weights: Annotated[bool, PlainValidator(bool)] = False
    #: weighted: at most this many greedy picks (with replacement) from the library of every finished trial
    max_size: PlainInt = Field(25, ge=1)

    @field_validator("methods", mode="before")
    @classmethod
    def _comma_separated(cls, methods: Any) -> Any:
        return [m.strip() for m in methods.split(",")] if isinstance(methods, str) else methods


class ResultsSpec(SweepSpec):
    """A whole sweep, checked, its ``ensemble`` section included (see the module)."""

    ensemble: EnsembleSpec = EnsembleSpec()


def load_spec(path: str | os.PathLike, **overrides: Any) -> ResultsSpec:
    """Read a sweep YAML and check every section (`search.spec.load_spec`, as a `ResultsSpec`)."""
    return load_search_spec(path, spec_type=ResultsSpec, **overrides)
