"""`python -m search` is the `seqsweep` command."""

from search.cli import main

if __name__ == "__main__":
    main()
