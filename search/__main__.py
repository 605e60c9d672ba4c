"""`python -m search` is the `seqsweep` command: the spelling on a Ray cluster's nodes, where the
repository is shipped with ``ray job submit --working-dir .`` and not installed."""

from seqsweep.cli import main

if __name__ == "__main__":
    main()
