"""`python -m search` runs the `seqsweep` command: the spelling on a Ray cluster's nodes, where
the repository is shipped with ``ray job submit --working-dir .`` and not installed.

It hands the whole command line to ``python -m seqsweep`` (`runpy`), so the search room
imports nothing of the roof (`seqsweep.cli`, which puts every room together): this module
is a launcher, run only as a program, never imported.
"""

import runpy

if __name__ == "__main__":
    runpy.run_module("seqsweep", run_name="__main__")
