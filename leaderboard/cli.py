"""`modomodo leaderboard render|publish|table|cross-base` (registered on the main CLI by harness/cli/app.py)."""

from __future__ import annotations

from pathlib import Path

import click


class LeaderboardError(click.ClickException):
    exit_code = 2


@click.group("leaderboard")
def leaderboard():
    """Render the static leaderboard site and publish it to the Hugging Face Hub."""


def _results_folders(command):
    """`--results A [B C ...]`: the bench output folders a command reads (one definition for every command)."""
    command = click.argument("more_results", nargs=-1, type=click.Path(file_okay=False))(command)
    return click.option(
        "--results",
        "results",
        required=True,
        type=click.Path(file_okay=False),
        help="A `modomodo bench` output folder; more folders may follow it (--results A B C).",
    )(command)


@leaderboard.command("render")
@_results_folders
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Site folder (replaced if it is a site).")
def render_cmd(results, more_results, out):
    """Render the leaderboard site from one or more bench results folders."""
    from leaderboard.parallel import WorkersError
    from leaderboard.results_folder import ResultsError
    from leaderboard.site import render

    try:
        index = render([results, *more_results], out)
    except (ResultsError, FileNotFoundError, WorkersError) as e:
        raise LeaderboardError(str(e)) from None
    click.echo(f"leaderboard: {index}")
    click.echo(f"open it: file://{index}  (or serve it: python -m http.server -d {Path(index).parent} 8000)")


@leaderboard.command("publish")
@click.option("--site", required=True, type=click.Path(file_okay=False), help="A site made by `leaderboard render`.")
@click.option("--repo-id", required=True, help="ORG/NAME of the Hub repo (created if missing).")
@click.option(
    "--repo-type",
    default="space",
    show_default=True,
    type=click.Choice(["space", "dataset"]),
    help="A static Space, or a dataset repo holding the site and the raw results.",
)
@click.option("--dry-run", is_flag=True, help="List the files and the commit; upload nothing.")
def publish_cmd(site, repo_id, repo_type, dry_run):
    """Upload the site to the Hugging Face Hub in one commit (token: `hf auth login` or HF_TOKEN)."""
    from leaderboard.publish import PublishError, plan, publish

    try:
        p = plan(site, repo_id, repo_type)
        if dry_run:
            click.echo(p.describe())
            click.echo("dry run: nothing was uploaded")
            return
        url = publish(p)
    except PublishError as e:
        raise LeaderboardError(str(e)) from None
    click.echo(f"published {len(p.files)} files to {repo_type} {repo_id}: {url}")


@leaderboard.command("table")
@_results_folders
@click.option("--budget", "budget_spec", default=None, help="Budgets to show, e.g. 8,11,16,24 (default: all).")
@click.option("--suite", "suite_names", multiple=True, help="Suites to show (repeatable; default: all).")
def table_cmd(results, more_results, budget_spec, suite_names):
    """Print the normalised-regret table (mean [95% CI]) per suite and the rank correlations, as markdown."""
    from leaderboard.data import load_results
    from leaderboard.results_folder import ResultsError
    from leaderboard.stats import compute
    from leaderboard.tables import report

    budgets = _budgets(budget_spec)
    try:
        res = load_results([Path(results), *map(Path, more_results)])
        # each suite's bench.json entry (the judge's verdict, with its card): what the verdict lines rest on
        click.echo(report(compute(res), budgets, list(suite_names) or None, dict(res.suites)))
    except (ResultsError, FileNotFoundError, ValueError) as e:
        raise LeaderboardError(str(e)) from None


def _budgets(spec: str | None) -> list | None:
    if not spec:
        return None
    from leaderboard.data import budget_value

    try:
        return [budget_value(b) for b in spec.split(",") if b.strip()]
    except ValueError:
        raise LeaderboardError(f"--budget must be comma-separated numbers (e.g. 4,8 or 2.5), got {spec!r}") from None


@leaderboard.command("cross-base")
@_results_folders
@click.option("--budget", "budget_spec", default=None, help="Budgets to show, e.g. 8,16 (default: all).")
@click.option(
    "--descriptive",
    is_flag=True,
    help="Pair every RLVR suite, also those that cannot rank (each row says which can): descriptive only.",
)
def cross_base_cmd(results, more_results, budget_spec, descriptive):
    """Print the cross-base table as markdown: the rank correlation of the strategies between every pair of RLVR
    suites that can rank, labelled across base (same task set) / across task set (same base) / other, each
    suite's base model and task set read from its card (leaderboard/cross_base.py)."""
    from leaderboard.cross_base import compute_cross_base, cross_base_markdown
    from leaderboard.data import load_results
    from leaderboard.results_folder import ResultsError

    budgets = _budgets(budget_spec)
    try:
        table = compute_cross_base(load_results([Path(results), *map(Path, more_results)]), descriptive)
    except (ResultsError, FileNotFoundError, ValueError) as e:
        raise LeaderboardError(str(e)) from None
    if budgets and len(table) and not set(budgets) & set(table["budget"]):
        raise LeaderboardError(f"no budget {budget_spec!r} in these results; they have {sorted(set(table['budget']))}")
    click.echo(cross_base_markdown(table, budgets), nl=False)
