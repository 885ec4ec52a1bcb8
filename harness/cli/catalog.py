"""`modomodo suites` and `modomodo strategies`: what is registered, one line each."""

from __future__ import annotations

import click

from harness.cli.common import _allow_unsandboxed, _guard
from harness.suites import SuiteError


@click.command("suites")
@_guard
def suites_cmd():
    """List the registered suites (baselines/ and $MODOMODO_SUITE_PATH), one line each."""
    from harness import suites

    for name, folder in sorted(suites.registered().items()):
        try:
            s = suites.load(folder)
            click.echo(
                f"{name:<22} {s.kind:<9} {len(s.space.datasets)} datasets  {s.metric} ({s.goal})  v{s.version}  "
                f"{s.describe()}"
            )
        except SuiteError as e:
            click.echo(f"{name:<22} BROKEN    {e}")


@click.command("strategies")
@click.option(
    "--strategy-file",
    "strategy_files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="A Python file whose Strategy classes to register (repeatable).",
)
@click.option(
    "--allow-unsandboxed",
    is_flag=True,
    help="Run strategies from files as plain processes where bubblewrap is missing or cannot start "
    "(they can then read your files; results marked sandboxed=no). Default: such studies fail.",
)
@_guard
def strategies_cmd(strategy_files, allow_unsandboxed):
    """List the registered strategies, one line each."""
    import strategies
    from harness.sandbox import submission

    _allow_unsandboxed(allow_unsandboxed)

    for f in strategy_files:
        submission.load_file(f)
    for name in strategies.names():
        cls = strategies.get(name)
        click.echo(f"{name:<18} {getattr(cls, 'kind', 'offline'):<8} {cls.family:<10} {cls.description}")
