"""The `modomodo` command line. Command names and flags are the project's contract.

Every user error exits with status 2 and one line that names the bad value (and what would be
valid); tracebacks are for bugs only (harness/cli/common.py). One module per command group:

| module | commands |
|---|---|
| `catalog.py` | `suites`, `strategies` |
| `run.py` | `run`, `prefetch` |
| `bench.py` | `bench` |
| `sweep.py` | `sweep` |
| `suite.py` | `suite import`, `suite check`, `suite from-sweep` |
| `checks.py` | `verify`, `reproduce paper` |
| leaderboard/cli.py | `leaderboard render`, `leaderboard publish` |
"""

from __future__ import annotations

import click

from harness.cli import bench, catalog, checks, run, suite, sweep


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="modomodo", message="modomodo %(version)s")
def main():
    """modomodo: benchmark data-mixture strategies for multimodal RLVR."""


for command in (
    catalog.suites_cmd,
    catalog.strategies_cmd,
    run.run_cmd,
    run.prefetch_cmd,
    bench.bench_cmd,
    sweep.sweep_cmd,
    suite.suite_group,
    checks.verify_cmd,
    checks.reproduce_group,
):
    main.add_command(command)


def _register_leaderboard() -> None:
    """`modomodo leaderboard render|publish` live in leaderboard/cli.py."""
    from leaderboard.cli import leaderboard

    main.add_command(leaderboard)


_register_leaderboard()
