"""The `modomodo` command line (harness/cli/app.py), one module per command group.

`main` is the console script's entry point (pyproject.toml: `modomodo = "harness.cli:main"`);
`python -m harness.cli` runs it too (harness/cli/__main__.py).
"""

from harness.cli.app import main

__all__ = ["main"]
