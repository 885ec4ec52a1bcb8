"""`modomodo bench`: every (suite, strategy, budget, seed) study, and the summary table it prints."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np

from harness.cli.common import (
    RUNNER_KINDS,
    _allow_unsandboxed,
    _bench_seeds,
    _budget_list,
    _check_out,
    _check_protocol_file,
    _dedupe,
    _guard,
    _one_line,
)


@click.command("bench")
@click.option("--suite", "suite_refs", multiple=True, required=True, help="Suite name or folder (repeatable).")
@click.option("--strategy", "strategy_spec", default="all", show_default=True, help="NAME[,NAME...] or all.")
@click.option(
    "--budget",
    "budget_spec",
    default=None,
    help="Budgets in run-equivalents [default: 4,8,11,16,24; the online track: 1, its one training run]; "
    "fractions (e.g. 4.5) on suites with partial runs.",
)
@click.option(
    "--seeds",
    default="20",
    show_default=True,
    help="Seeds per study: a count N (seeds 0..N-1), a range N-M, or a comma list (as sweep --seeds).",
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Results folder (resumable).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Local worker processes.")
@click.option(
    "--strategy-file",
    "strategy_files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="A Python file whose Strategy classes to register (repeatable).",
)
@click.option(
    "--runner",
    default="replay",
    show_default=True,
    type=click.Choice(RUNNER_KINDS),
    help="Runner kind: replay (recorded tables, analytic suites), cpu or gpu (real training).",
)
@click.option(
    "--track",
    default=None,
    type=click.Choice(["pool", "continuous", "online"]),
    help="How recommendations are judged: pool = only recorded mixtures, every score measured (the "
    "default on recorded suites); continuous = any mixture (analytic suites, live suites, and "
    "recorded suites whose surrogate passes the fidelity gate); online = online strategies, each "
    "study one training run whose weights change as it trains (live suites, --runner cpu). "
    "Default: each suite's own.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option(
    "--executor",
    default="local",
    show_default=True,
    type=click.Choice(["local", "slurm", "submitit-local"]),
    help="Where pilot runs execute: here, or one submitit job per run (SLURM, or submitit's local "
    "executor for a dry rehearsal).",
)
@click.option(
    "--protocol-file",
    default=None,
    type=click.Path(dir_okay=False),
    help="Protocol file (baselines/configs/*.yaml) whose slurm: section sizes each job and whose "
    "training settings the gpu runner uses.",
)
@click.option(
    "--allow-unsandboxed",
    is_flag=True,
    help="Run strategies from files as plain processes where bubblewrap is missing or cannot start "
    "(they can then read your files; results marked sandboxed=no). Default: such studies fail.",
)
@_guard
def bench_cmd(
    suite_refs,
    strategy_spec,
    budget_spec,
    seeds,
    out,
    workers,
    strategy_files,
    runner,
    track,
    quiet,
    executor,
    protocol_file,
    allow_unsandboxed,
):
    """Benchmark strategies: every (suite, strategy, budget, seed); writes OUT/summary.csv."""
    import strategies
    from harness.bench.bench import bench
    from harness.sandbox import submission

    _allow_unsandboxed(allow_unsandboxed)

    for f in strategy_files:
        submission.load_file(f)
    names = _dedupe(strategies.resolve(strategy_spec, kind="online" if track == "online" else "offline"), "--strategy")
    budgets = _budget_list(budget_spec if budget_spec is not None else ("1" if track == "online" else "4,8,11,16,24"))
    seeds = _bench_seeds(seeds)
    suite_refs = _dedupe(list(suite_refs), "--suite")
    if protocol_file:
        _check_protocol_file(protocol_file)
    _check_out(out)
    report = bench(
        suite_refs,
        names,
        budgets,
        seeds,
        out,
        workers=workers,
        strategy_files=[str(Path(f).resolve()) for f in strategy_files],
        runner=runner,
        progress=not quiet,
        executor=executor,
        protocol_file=protocol_file,
        track=track,
    )
    click.echo(
        f"{report.studies} studies ({report.studies_resumed} already done"
        + (f", {report.retried} retried after failing in an earlier bench" if report.retried else "")
        + f"), runs executed: {report.runs_executed}, reused from store: {report.runs_reused}, failed studies: "
        f"{report.failed_studies}",
        err=True,
    )
    if report.merged:
        click.echo(f"summary.csv also keeps {report.merged} studies of earlier benches on {out}", err=True)
    if report.records_rejected:
        click.echo(
            f"store records quarantined (truncated, empty, unhashed or failing their integrity check): "
            f"{report.records_rejected} (not served: done again; the files are in "
            f"{Path(out) / 'store' / 'quarantine'})",
            err=True,
        )
    _print_table(report.summary, report.suites)
    click.echo(f"summary: {report.out / 'summary.csv'}")
    if report.failed_studies:
        _print_failures([r for r in report.failures or [] if r.get("status") != "ok"], report.failed_studies)
        sys.exit(1)


def _print_failures(failures: list[dict], n: int) -> None:
    """The end of a bench with failed studies: how many, their reasons (counted), and what a resume does."""
    from collections import Counter

    reasons = Counter(_one_line(str(r.get("reason", "")), 160) for r in failures)
    click.echo(f"\n{n} studies failed in this bench (status 'failed' in summary.csv, reason column):", err=True)
    for why, k in reasons.most_common(5):
        click.echo(f"  {k} x {why}", err=True)
    if len(reasons) > 5:
        click.echo(f"  ... and {len(reasons) - 5} other reasons", err=True)
    click.echo("run the same command again to retry them (their completed runs come from the store)", err=True)


def _print_table(summary, suites_meta: list[dict] | None = None):
    """Mean normalised regret per suite × strategy × budget (lower is better). Suites that cannot rank
    come last, under their reason; a cell resting on surrogate answers carries a `*`."""
    ok = summary[summary["status"] == "ok"]
    if ok.empty:
        click.echo("no successful studies")
    meta = {m["name"]: m for m in (suites_meta or [])}
    order = sorted(set(ok["suite"]), key=lambda n: (not meta.get(n, {}).get("can_rank", True), n))
    marked = False
    for suite_name in order:
        g = ok[ok["suite"] == suite_name]
        if meta.get(suite_name, {}).get("track") == "online":
            _print_online(g, meta[suite_name])
            continue
        pivot = g.pivot_table(index="strategy", columns="budget", values="normalized_regret", aggfunc="mean")
        pivot = pivot.sort_values(pivot.columns[-1])
        sur = (
            g.pivot_table(index="strategy", columns="budget", values="surrogate_fraction", aggfunc="mean")
            if "surrogate_fraction" in g
            else None
        )
        table = pivot.map(lambda v: f"{v:.3f}" if np.isfinite(v) else str(v))
        if sur is not None:
            sur = sur.reindex(index=pivot.index, columns=pivot.columns).fillna(0)
            table = table.where(sur <= 0, table + "*")
            marked |= bool((sur > 0).to_numpy().any())
        m = meta.get(suite_name, {})
        track = f" [{m['track']} track]" if m.get("track") else ""
        verdict = "" if m.get("can_rank", True) else f"  -- CANNOT RANK: {m.get('ranking_reason', '')}"
        click.echo(f"\n{suite_name}{track}: mean normalised regret (lower is better){verdict}")
        click.echo(table.to_string())
    if marked:
        click.echo("\n* rests on surrogate answers (see surrogate_fraction in summary.csv)")


def _print_online(g, meta: dict) -> None:
    """The online track: each strategy's mean score over its runs, and (with the `constant` control benched)
    the mean paired difference from the control over the seeds both ran."""
    metric = meta.get("metric", "score")
    click.echo(
        f"\n{meta['name']} [online track]: mean {metric} of the trained model (higher is better), "
        f"one training run per seed"
    )
    ctrl = g[g["strategy"] == "constant"].set_index("seed")["score"]
    rows = []
    for name, s in g.groupby("strategy"):
        sc = s.set_index("seed")["score"]
        common = sc.index.intersection(ctrl.index)
        diff = (sc[common] - ctrl[common]).mean() if len(common) and name != "constant" else float("nan")
        rows.append(
            {
                "strategy": name,
                "runs": len(sc),
                f"mean {metric}": f"{sc.mean():.4f}",
                "vs constant (paired)": "" if diff != diff else f"{diff:+.4f} over {len(common)}",
                "cost (run-eq.)": f"{s['cost_used'].mean():.4f}",
            }
        )
    import pandas as pd

    click.echo(pd.DataFrame(rows).set_index("strategy").to_string())
