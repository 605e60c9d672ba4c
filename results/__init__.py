"""What users read after a sweep and use afterwards: the leaderboard, ensembles of the top
trials (refit and scored once on the held-out test split), the report, and prediction on
new audio.

The last room: it imports `features`, `trainables` and `search`; none of them imports it
(the roof, `seqsweep.cli`, hands `finish_sweep` to ``seqsweep sweep run``). The public face::

    from results import finish_sweep, predict, load_leaderboard, format_leaderboard

    summary = finish_sweep("runs/quick")        # ensembles.csv, ensemble/, report/
    frame = predict("runs/quick", ["new_audio/"], method="weighted")

Submodules load torch, scikit-learn and matplotlib only when used.
"""

import lazy_loader

# the names and where they live: __init__.pyi (read by type checkers too)
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
