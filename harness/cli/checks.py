"""`modomodo verify` (re-run recorded pairs of a suite) and `modomodo reproduce paper` (the headline table)."""

from __future__ import annotations

import json
import sys

import click

from harness.cli.common import UserError, _guard


@click.command("verify")
@click.option(
    "--suite",
    "suite_ref",
    required=True,
    help="A recorded suite (e.g. minimodo-tiny): its card's protocol.recorded_from names the live suite to re-run.",
)
@click.option("--runs", default=3, show_default=True, type=int, help="Recorded (mixture, seed) pairs to re-run.")
@click.option(
    "--runner",
    default=None,
    type=click.Choice(["cpu", "gpu", "replay"]),
    help="Runner kind (default: the one the suite was recorded with).",
)
@click.option("--workers", default=1, show_default=True, type=int, help="Re-runs at once (processes).")
@click.option(
    "--live",
    "live_ref",
    default=None,
    help="The live suite (name or folder) when the card's protocol.recorded_from is not registered here.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@_guard
def verify_cmd(suite_ref, runs, runner, workers, live_ref, as_json):
    """Re-run recorded (mixture, seed) pairs of a recorded suite with its live protocol: the new value beside
    the recorded one, its z-score against the mixture's recorded seeds, bit-for-bit or not, and a stated
    test of consistency with the recording (exit status 1 when not consistent)."""
    from harness.factory.verify import format_report, format_rerun, verify

    if runs < 1:
        raise UserError(f"--runs must be an integer >= 1, got {runs}")
    if workers < 1:
        raise UserError(f"--workers must be an integer >= 1, got {workers}")
    report = verify(
        suite_ref,
        runs=runs,
        runner=runner,
        workers=workers,
        live=live_ref,
        on_rerun=None
        if as_json
        else (lambda r, metric: click.echo("re-run done:" + format_rerun(r, metric)[1:], err=True)),
    )
    click.echo(json.dumps(report.to_dict(), indent=2, sort_keys=True) if as_json else format_report(report))
    if not report.consistent:
        sys.exit(1)


@click.group("reproduce")
def reproduce_group():
    """Reproduce published computations offline."""


@reproduce_group.command("paper")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="Also write the markdown report here.")
@click.option(
    "--table",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="The full transcribed Table 2 CSV, checked against the record.",
)
@_guard
def reproduce_paper_cmd(as_json, out, table):
    """Recompute the paper's heuristic mixtures and quadratic surrogate from its seed runs."""
    from harness.factory.reproduce_paper import main as reproduce_paper

    args = (["--json"] if as_json else []) + (["--out", out] if out else []) + (["--table", table] if table else [])
    sys.exit(reproduce_paper(args))
