"""`python -m seqsweep` is the `seqsweep` command."""

from seqsweep.cli import main

if __name__ == "__main__":
    main()
