"""The rooms' import direction, checked rather than written down: the import-linter contracts
in pyproject.toml (``[tool.importlinter]``: ground <- features <- trainables <- search <-
results <- roof, and no circle between the modules of one package) must hold, lazy imports
inside functions included. ``lint-imports`` in the repository root runs the same check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# import-linter's own command, run from the repository root so that it reads this checkout's
# pyproject.toml and analyses this checkout's packages
LINT_IMPORTS = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def test_the_import_contracts_hold():
    out = subprocess.run([sys.executable, "-c", LINT_IMPORTS, "--no-cache"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    report = out.stdout + out.stderr
    assert out.returncode == 0, report
    assert "0 broken" in report, report
