"""The real multi-fidelity pool (issue 16), measured from the sweep store of minimodo-pool-live:

    python -m tests.benchmarks.pool_report [--store baselines/sweeps/minimodo-pool-live] [--seeds 20]
                                           [--budgets 4,8,16] [--out DIR]

1. Signal: for every objective (Out_Score_p, In_Score_p, Out_Score, In_Score), the SNR of the per-mixture mean
   at each fidelity (0.25, 0.5, 1.0), and the rank correlation of per-mixture means with full fidelity (does a
   quarter-length run predict the full one?).
2. The primary objective by the issue's rule: the out-of-domain one (Out_Score_p) if its per-mixture mean
   reaches SNR 3, else the in-domain one (In_Score_p) if it does; then the store exported as a replay suite
   (`export_suite`, one row per mixture, seed and fidelity) into `--out` (default: a temporary folder).
3. Pool-track regret at budgets in run-equivalents: single-fidelity strategies against multi-fidelity ones at
   equal cost, mean normalised regret [95% bootstrap CI over study seeds] and the mean run-equivalents spent.
Works on a sweep in progress (mixtures with fewer seeds count as they are; the report says how many). Prints
markdown; every figure is computed in this run from the recorded runs.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
OBJECTIVES = ["Out_Score_p", "In_Score_p", "Out_Score", "In_Score"]
STRATEGIES = ["random", "gp-bo", "quadratic-bo", "successive-halving", "hyperband", "bohb-gp"]


def signal_tables(store, suite) -> tuple[list[str], dict]:
    from harness.suites.recorded import fidelity_signal, fidelity_table, weight_column

    wcols = [weight_column(d) for d in suite.space.datasets]
    long = fidelity_table(store, suite)
    block = fidelity_signal(long, wcols, [m for m in OBJECTIVES if m in long.columns])
    per_mix = long[long["fidelity"] == 1.0].groupby(wcols).size()
    lines = [f"{len(long[long['fidelity'] == 1.0])} full runs, {per_mix.size} mixtures, seeds per mixture "
             f"{int(per_mix.min())}-{int(per_mix.max())} (median {int(per_mix.median())})", "",
             "| objective | SNR at 0.25 | SNR at 0.5 | SNR at 1.0 | Spearman 0.25 vs 1.0 | Spearman 0.5 vs 1.0 |",
             "|---|---|---|---|---|---|"]
    for m in OBJECTIVES:
        snr = [block["signal"].get(f, {}).get(m, {}).get("snr_mean", math.nan) for f in ("0.25", "0.5", "1.0")]
        rho = [block["rank_correlation"].get(f, {}).get(m, {}).get("spearman_with_full", math.nan) for f in ("0.25", "0.5")]
        lines.append(f"| {m} | " + " | ".join(f"{x:.2f}" for x in snr + rho) + " |")
    return lines, block


def primary_objective(block) -> tuple[str | None, str]:
    full = block["signal"].get("1.0", {})
    for m, role in (("Out_Score_p", "out-of-domain"), ("In_Score_p", "in-domain")):
        snr = full.get(m, {}).get("snr_mean", math.nan)
        if snr >= 3:
            return m, f"{m} ({role}): SNR of the per-mixture mean {snr:.2f} >= 3"
    return None, "neither Out_Score_p nor In_Score_p reaches SNR 3 yet"


def regret_table(folder: Path, seeds: int, budgets: list[float], out: Path) -> list[str]:
    from harness.bench import bench
    from leaderboard.stats import bootstrap_ci

    bench([str(folder)], STRATEGIES, budgets, seeds, out, workers=1, progress=False, track="pool")
    s = pd.read_csv(out / "summary.csv")
    lines = ["| strategy | " + " | ".join(f"budget {b:g}: regret [95% CI] (spent)" for b in budgets) + " |",
             "|---|" + "---|" * len(budgets)]
    for name in STRATEGIES:
        cells = []
        for b in budgets:
            g = s[(s["strategy"] == name) & (s["budget"] == b) & (s["status"] == "ok")]
            m, lo, hi = bootstrap_ci(g["normalized_regret"].to_numpy(float), "pool", name, b)
            cells.append(f"{m:.3f} [{lo:.3f}, {hi:.3f}] ({g['cost_used'].mean():.2f})" if len(g) else "n/a")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def report(store_dir: Path, seeds: int, budgets: list[float], out: Path | None) -> str:
    from harness import suites
    from harness.store import ResultStore
    from harness.suites.recorded import export_suite

    live = suites.load(str(ROOT / "baselines" / "minimodo-pool-live"))
    store = ResultStore(store_dir)
    lines = ["# minimodo-pool: signal by fidelity and pool regret", "", f"Store `{store_dir}`.", ""]
    sig, block = signal_tables(store, live)
    lines += sig + [""]
    metric, why = primary_objective(block)
    lines += [f"Primary objective: {why}.", ""]
    if metric is None:
        return "\n".join(lines)
    tmp = Path(tempfile.mkdtemp(prefix="modomodo-pool-report-"))
    folder = export_suite(store, live, "minimodo-pool", out or tmp / "minimodo-pool", overwrite=True, metric=metric)
    lines += [f"Exported to `{folder}`; pool track, {seeds} study seeds, mean normalised regret and "
              f"(mean run-equivalents spent):", ""]
    lines += regret_table(folder, seeds, budgets, tmp / "bench")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", default=str(ROOT / "baselines" / "sweeps" / "minimodo-pool-live"))
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--budgets", default="4,8,16")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    budgets = [float(b) if not float(b).is_integer() else int(b) for b in a.budgets.split(",")]
    np.seterr(all="ignore")
    print(report(Path(a.store), a.seeds, budgets, Path(a.out) if a.out else None))


if __name__ == "__main__":
    main()
