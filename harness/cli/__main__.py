"""`python -m harness.cli`: the same as the `modomodo` console script."""

from harness.cli.app import main

main()
