"""The online track's measured figures (issue 15), from recorded online results and the offline recorded suites:

    python -m tests.benchmarks.online_report [--online baselines/online] [--offline-seeds 20] [--figures DIR]

- per online suite: each online strategy and the `constant` control, the mean of the trained model's Out_Score
  and In_Score over the training seeds [95% bootstrap CI], the paired difference against the control with its
  95% CI and SNR (|mean| / standard error), and the measured overhead of the online machinery;
- where the offline strategies stand on the same compute axis: a replay bench of every offline strategy on the
  recorded suite of the same protocol and base model (pool track, budgets 4 and 8, `--offline-seeds` study
  seeds; the recommendation's score is its recorded per-mixture mean), at B + 1 run-equivalents;
- the weight-trajectory and score-against-compute pictures (SVG) into `--figures`.
Prints markdown; every figure is computed in this run from the recorded tables (nothing is trained).
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]


def _fmt(m, lo=None, hi=None, digits=4) -> str:
    if m is None or not math.isfinite(m):
        return "n/a"
    if lo is None:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def offline_bench(suites: list[str], seeds: int, out: Path) -> Path:
    import strategies
    from harness.bench.bench import bench

    names = strategies.names("offline")
    bench(suites, names, [4, 8], seeds, out, workers=1, progress=False, track="pool")
    return out


def report(online_dir: Path, offline_seeds: int, figures: Path | None) -> str:
    from leaderboard import plots_online
    from leaderboard.data import load_results
    from leaderboard.results_folder import live_suite_name
    from leaderboard.online import compute_online, offline_match
    from leaderboard.stats import bootstrap_ci

    online_only = load_results([online_dir])
    lives = {s: live_suite_name(online_only.suites[s]) for s in online_only.online_suite_names}
    recorded = {"minimodo-tiny-live": "minimodo-tiny", "minimodo-tiny-h128-live": "minimodo-tiny-h128"}
    wanted = sorted({recorded[v] for v in lives.values() if v in recorded})
    tmp = Path(tempfile.mkdtemp(prefix="modomodo-online-report-"))
    folders = [online_dir]
    if wanted:
        folders.append(offline_bench(wanted, offline_seeds, tmp / "offline"))
    results = load_results(folders)
    st = compute_online(results)
    lines = [
        "# Online track: measured figures",
        "",
        f"Online results: `{online_dir}`; offline: a replay bench of every offline strategy on "
        f"{', '.join(wanted) or 'no recorded suite'} (pool track, budgets 4 and 8, {offline_seeds} study seeds), "
        f"run by this script.",
        "",
    ]
    for suite in st.suites:
        tab = st.table[st.table["suite"] == suite].set_index("strategy")
        runs = results.online_runs[results.online_runs["suite"] == suite]
        lines += [
            f"## {suite}",
            "",
            "| strategy | runs ok | mean Out_Score [95% CI] | mean In_Score [95% CI] | "
            "weights moved | cost (run-eq.) | online ms / step | of which the strategy |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, row in tab.iterrows():
            ok = runs[(runs["strategy"] == name) & (runs["status"] == "ok")]
            ins = bootstrap_ci(pd.to_numeric(ok["In_Score"], errors="coerce").to_numpy(float), "report", suite, name)
            lines.append(
                f"| {name} | {row['n_ok']}/{row['runs']} | {_fmt(row['score_mean'], row['score_lo'], row['score_hi'])} "
                f"| {_fmt(*ins)} | {row['weight_shift']:.3f} | {row['cost_mean']:.4f} | {row['ms_per_step']:.2f} | "
                f"{row['ms_strategy_per_step']:.2f} |"
            )
        lines += [
            "",
            "Paired difference from the `constant` control (same training seeds):",
            "",
            "| metric | strategy | seeds | mean difference [95% CI] | SNR (|mean| / se) | verdict |",
            "|---|---|---|---|---|---|",
        ]
        for _, p in st.paired[st.paired["suite"] == suite].iterrows():
            lines.append(
                f"| {p['metric']} | {p['strategy']} | {p['n_pairs']} | "
                f"{p['diff_mean']:+.4f} [{p['diff_lo']:+.4f}, {p['diff_hi']:+.4f}] | {p['snr']:.2f} | {p['verdict'] or 'cannot tell'} |"
            )
        lines += [
            "",
            "(weights moved: mean total-variation distance of a step's weights from its run's first ones)",
            "",
        ]
        lines += [f"- {v}" for v in st.verdicts.get(suite, [])] + [""]
        match = offline_match(results, suite)
        if match:
            lines += _offline_lines(results, suite, match)
        if figures is not None:
            figures.mkdir(parents=True, exist_ok=True)
            slug = suite.replace(":", "-")
            plots_online.online_weights(st.weights, suite, list(tab.index), figures / f"{slug}-weights.svg")
            lines += [f"Pictures: `{figures / (slug + '-weights.svg')}`", ""]
    return "\n".join(lines)


def _offline_lines(results, suite: str, offline: str) -> list[str]:
    s = results.summary
    g = s[(s["suite"] == offline) & (s["status"] == "ok")]
    uni = float(results.suites[offline].get("uniform_score") or math.nan)
    live_uniform = float(results.suites[suite].get("uniform_score") or math.nan)
    const = results.online_runs[
        (results.online_runs["suite"] == suite) & (results.online_runs["strategy"] == "constant")
    ]
    lines = [
        f"Offline, on the same compute axis ({offline}: the recorded per-mixture mean of the recommendation):",
        "",
        "| budget | cost (run-eq.) | best offline strategy: mean score [95% CI] | median over strategies | uniform |",
        "|---|---|---|---|---|",
    ]
    from leaderboard.stats import bootstrap_ci

    for b in (4, 8):
        gb = g[g["budget"] == b]
        means = gb.groupby("strategy")["score"].mean().sort_values(ascending=False)
        if means.empty:
            continue
        top = means.index[0]
        ci = bootstrap_ci(gb[gb["strategy"] == top]["score"].to_numpy(float), "report", offline, top, b)
        lines.append(f"| {b} | {b + 1} | {top}: {_fmt(*ci)} | {means.median():.4f} | {uni:.4f} |")
    lines += [
        "",
        f"Reference: the uniform mixture's recorded per-mixture mean on {offline} is {uni:.4f}; the live "
        f"suite's oracle (4 offline runs at uniform, the offline sampler) {live_uniform:.4f}; the online "
        f"`constant` control at uniform (the online sampler) {const['score'].mean():.4f} over {len(const)} runs.",
        "",
    ]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--online", default=str(ROOT / "baselines" / "online"))
    ap.add_argument("--offline-seeds", type=int, default=20)
    ap.add_argument("--figures", default=None)
    a = ap.parse_args()
    print(report(Path(a.online), a.offline_seeds, Path(a.figures) if a.figures else None))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
