"""The RegMix suites (issue 24) benched, and scale transfer as a result:

    python -m tests.benchmarks.regmix_report [--seeds 20] [--budgets 8,16,32] [--workers 2] [--out DIR]
                                             [--skip-pool] [--transfer-budgets 0.25,0.5,1,2,4,8,16,32] [--write]

1. Pool-track regret of every offline built-in on regmix-1m, regmix-60m, regmix-1b and regmix-1m-to-60m at the
   budgets (run-equivalents; on regmix-1m-to-60m, 60M runs), mean normalised regret [95% bootstrap CI over study
   seeds]; the best strategy against random search as a ratio of mean normalised regrets, with a 95% bootstrap
   CI (study seeds resampled within each strategy).
2. Scale transfer between regmix-1m and regmix-60m: Spearman of the strategies' mean regrets at each budget, with
   a 95% bootstrap CI (study seeds resampled within each strategy and suite, the correlation recomputed).
3. regmix-1m-to-60m: regret at 60M against budget (60M run-equivalents) for strategies that pilot only at 60M
   (the single-fidelity built-ins, whose pilots there are 60M runs), only at 1M (the same strategies run on the
   256 mixtures' 1M table with floor(B / c) pilots, c = the card's cost of a 1M run; the recommendation scored by
   its 60M loss) and mixed (successive halving, hyperband, bohb-gp); and the 60M compute the 1M pilots save: the
   smallest 60M-only budget whose mean regret is at most the 1M-only one's.
4. Time per study per strategy on the 1,256-candidate pool (one study at the largest budget, this process).
Prints markdown; every figure is computed in this run from the suites' recorded runs.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
SUITES = ["regmix-1m", "regmix-60m", "regmix-1b", "regmix-1m-to-60m"]
MIXED = ["successive-halving", "hyperband", "bohb-gp"]


def offline() -> list[str]:
    from strategies.registry import builtin_names

    return builtin_names("offline")


def single_fidelity() -> list[str]:
    import strategies

    return [n for n in offline() if strategies.get(n).family != "multi-fidelity"]


def ci(values, *key) -> tuple[float, float, float]:
    from leaderboard.stats import bootstrap_ci

    return bootstrap_ci(np.asarray(values, float), *key)


def boot_ratio(a: np.ndarray, b: np.ndarray, key: str, n: int = 2000) -> tuple[float, float, float]:
    """mean(a) / mean(b) with a 95% bootstrap CI (each resampled on its own: independent studies)."""
    rng = np.random.default_rng(zlib.crc32(key.encode()))  # deterministic (hash() is salted per process)
    r = [
        a[rng.integers(0, len(a), len(a))].mean() / max(b[rng.integers(0, len(b), len(b))].mean(), 1e-12)
        for _ in range(n)
    ]
    return float(a.mean() / max(b.mean(), 1e-12)), float(np.quantile(r, 0.025)), float(np.quantile(r, 0.975))


# -- 1. pool regret ---------------------------------------------------------------------------------------------
def pool_bench(seeds: int, budgets: list, out: Path, workers: int) -> pd.DataFrame:
    from harness.bench.bench import bench

    bench(SUITES, offline(), budgets, seeds, out, workers=workers, progress=False, track="pool")
    s = pd.read_csv(out / "summary.csv")
    return s[s["status"] == "ok"]


def regret_tables(s: pd.DataFrame, budgets: list) -> list[str]:
    lines = []
    for suite in SUITES:
        g = s[s["suite"] == suite]
        lines += [
            f"### {suite}",
            "",
            "| strategy | " + " | ".join(f"budget {b:g}" for b in budgets) + " |",
            "|---|" + "---|" * len(budgets),
        ]
        order = g.groupby("strategy")["normalized_regret"].mean().sort_values()
        for name in order.index:
            cells = []
            for b in budgets:
                x = g[(g["strategy"] == name) & (g["budget"] == b)]["normalized_regret"].to_numpy(float)
                m, lo, hi = ci(x, suite, name, b)
                cells.append(f"{m:.3f} [{lo:.3f}, {hi:.3f}]" if len(x) else "n/a")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines += ["", "Best against random (ratio of mean normalised regrets, 95% bootstrap CI; < 1: better):", ""]
        for b in budgets:
            gb = g[g["budget"] == b]
            means = gb.groupby("strategy")["normalized_regret"].mean().drop("random", errors="ignore")
            rnd = gb[gb["strategy"] == "random"]["normalized_regret"].to_numpy(float)
            if means.empty or not len(rnd):
                continue
            best = means.idxmin()
            r, lo, hi = boot_ratio(gb[gb["strategy"] == best]["normalized_regret"].to_numpy(float), rnd, f"{suite}-{b}")
            lines.append(
                f"- budget {b:g}: {best} {means[best]:.3f} vs random {rnd.mean():.3f}: ratio {r:.2f} "
                f"[{lo:.2f}, {hi:.2f}]"
            )
        lines.append("")
    return lines


# -- 2. rank correlation between scales ------------------------------------------------------------------------
def scale_rank_correlation(
    s: pd.DataFrame, budgets: list, a: str = "regmix-1m", b: str = "regmix-60m", n: int = 2000
) -> list[str]:
    """Spearman of the strategies' mean normalised regrets on suites a and b, per budget. The 95% CI resamples the
    study seeds (one draw of seed indices per replicate, shared by every strategy and both suites, so strategies
    that behave identically, e.g. sharing an initial design, stay tied as they are in the point estimate)."""
    from scipy.stats import spearmanr

    lines = [
        f"| budget | strategies | Spearman {a} vs {b} (mean regret) | 95% bootstrap CI (study seeds) |",
        "|---|---|---|---|",
    ]
    for bud in budgets:
        piv = {
            suite: s[(s["suite"] == suite) & (s["budget"] == bud)].pivot_table(
                index="seed", columns="strategy", values="normalized_regret"
            )
            for suite in (a, b)
        }
        shared = sorted(set(piv[a].columns) & set(piv[b].columns))
        seeds = sorted(set(piv[a].index) & set(piv[b].index))
        if len(shared) < 3 or not seeds:
            continue
        A, B = piv[a].loc[seeds, shared].to_numpy(float), piv[b].loc[seeds, shared].to_numpy(float)
        rho = spearmanr(np.nanmean(A, axis=0), np.nanmean(B, axis=0)).statistic
        rng = np.random.default_rng(int(bud * 1000) + 7)
        boots = []
        for _ in range(n):
            idx = rng.integers(0, len(seeds), len(seeds))
            r = spearmanr(np.nanmean(A[idx], axis=0), np.nanmean(B[idx], axis=0)).statistic
            if np.isfinite(r):
                boots.append(r)
        lo, hi = np.quantile(boots, [0.025, 0.975])
        lines.append(f"| {bud:g} | {len(shared)} | {rho:.3f} | [{lo:.3f}, {hi:.3f}] |")
    return lines


# -- 3. regret at 60M against budget: 1M-only, 60M-only, mixed --------------------------------------------------
def one_m_view(tmp: Path):
    """The 256 mixtures' 1M runs (fidelities.csv at the small level) as a single-fidelity suite, same weights."""
    from harness import suites
    from harness.factory.importer import import_table

    two = suites.load("regmix-1m-to-60m")
    small = min(two.fidelity_levels)
    long = pd.read_csv(Path(two.path) / "fidelities.csv")
    table = long[long["fidelity"] == small].drop(columns="fidelity")
    folder = import_table(
        table,
        "regmix-256-at-1m",
        dict(two.weight_columns),
        two.metric,
        "min",
        tmp / "at1m",
        scores=list(two.score_columns),
        overwrite=True,
        source="regmix-1m-to-60m fidelities.csv (1M)",
    )
    return suites.load(folder).judge("pool"), two.judge("pool"), float(two.card["cost_model"]["cost"][small])


def transfer(
    seeds: int, budgets: list, strategies_1m: list, strategies_60m: list, tmp: Path, workers: int
) -> tuple[list[str], pd.DataFrame]:
    import strategies
    from harness.bench.bench import bench
    from harness.runners import make_runner
    from harness.spec import Budget
    from harness.studies.study import Study

    at1m, two, c = one_m_view(tmp)
    rows = []
    # 60M only and mixed: the two-scale pool itself (single-fidelity strategies pilot at 1.0 = 60M)
    # (a study needs at least one 60M run-equivalent: the bench refuses smaller budgets)
    bench(
        ["regmix-1m-to-60m"],
        sorted(set(strategies_60m) | set(MIXED)),
        [b for b in budgets if b >= 1],
        seeds,
        tmp / "b60",
        workers=workers,
        progress=False,
        track="pool",
    )
    s = pd.read_csv(tmp / "b60" / "summary.csv")
    for r in s[s["status"] == "ok"].itertuples():
        rows.append(
            {
                "mode": "mixed" if r.strategy in MIXED else "60M only",
                "strategy": r.strategy,
                "budget": float(r.budget),
                "seed": r.seed,
                "nregret": r.normalized_regret,
                "pilots": r.runs_used,
            }
        )
    # 1M only: floor(B / c) pilots on the 1M table, the recommendation scored at 60M; budgets up to the pool's size
    # in 1M pilots (beyond it a strategy can only repeat recorded runs: one run per mixture)
    pool = len(at1m.space.candidates)
    budgets_1m = [b for b in budgets if b / c <= pool]
    for name in strategies_1m:
        cls = strategies.get(name)
        for b in budgets_1m:
            n = int(math.floor(b / c + 1e-9))
            for seed in range(seeds):
                out = Study(at1m, cls, Budget(n), seed, make_runner("replay", at1m)).run()
                if out.status != "ok":
                    continue
                rec = two.space.from_vector([out.recommended[d] for d in two.space.datasets], normalize=True)
                score, _ = two.oracle(rec)
                rows.append(
                    {
                        "mode": "1M only",
                        "strategy": name,
                        "budget": float(b),
                        "seed": seed,
                        "nregret": two.regret(score)[1],
                        "pilots": out.runs_used,
                    }
                )
    df = pd.DataFrame(rows)
    lines = [
        f"Cost of a 1M pilot: c = {c:g} 60M run-equivalents (card cost_model); a budget B buys floor(B / c) 1M "
        f"pilots. Mean normalised regret at 60M [95% bootstrap CI], {seeds} study seeds:",
        "",
        "| mode | strategy | " + " | ".join(f"B={b:g}" for b in budgets) + " |",
        "|---|---|" + "---|" * len(budgets),
    ]
    for (mode, name), g in sorted(df.groupby(["mode", "strategy"]), key=lambda t: (t[0][0], t[0][1])):
        cells = []
        for b in budgets:
            x = g[g["budget"] == float(b)]["nregret"].to_numpy(float)
            m, lo, hi = ci(x, mode, name, b)
            cells.append(f"{m:.3f} [{lo:.3f}, {hi:.3f}]" if len(x) else "n/a")
        lines.append(f"| {mode} | {name} | " + " | ".join(cells) + " |")
    # the saving: for each 1M-only cell, the smallest 60M-only budget (best 60M-only strategy there) at least as good
    means = df.groupby(["mode", "strategy", "budget"])["nregret"].mean()
    best60 = (
        means.loc["60M only"].groupby(level="budget").min() if "60M only" in means.index.get_level_values(0) else None
    )
    lines += [
        "",
        "60M compute saved by piloting at 1M (for each 1M-only strategy and budget B: the smallest budget "
        "B60 at which the best 60M-only strategy's mean regret is at most the 1M-only one's):",
        "",
        "| 1M-only strategy | B | its regret | B60 needed (60M only) | saving B60 / B |",
        "|---|---|---|---|---|",
    ]
    for name in strategies_1m:
        for b in budgets:
            key = ("1M only", name, float(b))
            if key not in means.index or best60 is None:
                continue
            r = means[key]
            ok = best60[best60 <= r + 1e-12]
            need = f"{ok.index.min():g}" if len(ok) else f"> {max(budgets):g}"
            save = f"{ok.index.min() / b:.1f}x" if len(ok) else f"> {max(budgets) / b:.0f}x"
            lines.append(f"| {name} | {b:g} | {r:.3f} | {need} | {save} |")
    return lines, df


# -- 4. time per study per strategy ----------------------------------------------------------------------------
def timing(budget: float, names: list[str], seed: int = 0) -> list[str]:
    from harness import suites
    from harness.runners import make_runner
    from harness.spec import Budget
    from harness.studies.study import Study

    import strategies

    s = suites.load("regmix-1m").judge("pool")
    lines = [
        f"One study per strategy on regmix-1m ({len(s.space.candidates)} candidates), budget {budget:g}, "
        f"pool track, this process (seconds of wall time, Study.run):",
        "",
        "| strategy | seconds per study | status |",
        "|---|---|---|",
    ]
    for name in names:
        t0 = time.perf_counter()
        out = Study(s, strategies.get(name), Budget(budget), seed, make_runner("replay", s)).run()
        lines.append(f"| {name} | {time.perf_counter() - t0:.2f} | {out.status} {out.reason[:60]} |")
    return lines


def report(
    seeds: int,
    budgets: list,
    transfer_budgets: list,
    out: Path,
    workers: int,
    skip_pool: bool,
    strategies_1m: list | None,
) -> str:
    import os

    lines = [
        f"# RegMix suites: pool regret and scale transfer ({_dt.date.today().isoformat()})",
        "",
        f"`python -m tests.benchmarks.regmix_report --seeds {seeds} --budgets {','.join(f'{b:g}' for b in budgets)}`"
        f" on {os.cpu_count()} CPUs (shared).",
        "",
    ]
    lines += ["## Time per study per strategy (1,256-candidate pool)", ""] + timing(max(budgets), offline()) + [""]
    if not skip_pool:
        s = pool_bench(seeds, budgets, out / "pool", workers)
        s.to_csv(out / "pool_summary.csv", index=False)
        lines += [f"## Pool-track regret (mean normalised regret [95% CI], study seeds {seeds})", ""] + regret_tables(
            s, budgets
        )
        lines += ["## Scale transfer: strategies ranked on regmix-1m vs regmix-60m", ""]
        lines += scale_rank_correlation(s, budgets) + [""]
        lines += scale_rank_correlation(s, budgets, "regmix-60m", "regmix-1b") + [""]  # other mixtures, 1B scale
    lines += ["## regmix-1m-to-60m: regret at 60M against budget, by where the pilots run", ""]
    names_1m = strategies_1m or single_fidelity()
    t_lines, df = transfer(seeds, transfer_budgets, names_1m, single_fidelity(), out / "transfer", workers)
    df.to_csv(out / "transfer_rows.csv", index=False)
    lines += t_lines
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--budgets", default="8,16,32")
    ap.add_argument("--transfer-budgets", default="0.25,0.5,1,2,4,8,16,32")
    ap.add_argument(
        "--strategies-1m",
        default="random,regmix,regmix-linear,quadratic",
        help="comma list for the 1M-only rows (up to 256 pilots per study: the cheap-per-step ones; gp-bo "
        "takes minutes per study there)",
    )
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", default=None)
    ap.add_argument("--skip-pool", action="store_true")
    ap.add_argument("--write", action="store_true", help="also write tests/benchmarks/regmix_report_<date>.md")
    a = ap.parse_args()
    num = lambda t: [int(x) if float(x).is_integer() else float(x) for x in t.split(",")]  # noqa: E731
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="regmix-report-"))
    out.mkdir(parents=True, exist_ok=True)
    np.seterr(all="ignore")
    text = report(
        a.seeds,
        num(a.budgets),
        num(a.transfer_budgets),
        out,
        a.workers,
        a.skip_pool,
        [x for x in a.strategies_1m.split(",") if x] or None,
    )
    print(text)
    if a.write:
        (Path(__file__).parent / f"regmix_report_{_dt.date.today().isoformat()}.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
