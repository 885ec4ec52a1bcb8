"""The pre-registered analysis of the online re-record (issue 23, item 3), exactly as
`tests/benchmarks/online_rerecord_preregistration.md` fixed it before the runs:

    python -m tests.benchmarks.online_rerecord_report [--new baselines/online] [--old baselines/online-v1]

- per suite and corrected method (dump, odm, odm-exp3, aioli): the paired differences of In_Score against the
  `constant` control over the study seeds both have, their mean with a 95% t interval and a 95% percentile
  bootstrap interval over seeds (a check), a two-sided Wilcoxon signed-rank p, and Holm's correction over the
  4 methods x 2 suites = 8 comparisons at family-wise 0.05;
- a method beats the control on a suite only if its Holm-adjusted p < 0.05 there with a positive mean, and
  overall only if it does so on both suites with the same sign (no cross-suite test: two suites are two units);
- Out_Score as a secondary outcome (paired mean and t interval, no test);
- each method's final weights (mean over seeds of the last step's weights) and its update time per step;
- `--old`: the same paired differences from the results recorded before the correction (seeds 0-7), beside.
Prints markdown. Every figure is computed here from the results folders' `online_runs.csv` / `online.csv`.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from leaderboard.evidence import holm

CONTROL = "constant"
METHODS = ("dump", "odm", "odm-exp3", "aioli")
PRIMARY, SECONDARY = "In_Score", "Out_Score"
ALPHA = 0.05
STEPS = 200  # the live suites' protocol: 200 GRPO steps per run


def paired(runs: pd.DataFrame, suite: str, method: str, score: str) -> np.ndarray:
    """d_i = score(method, seed i) - score(control, seed i) over the seeds both have, in seed order."""
    ok = runs[(runs["suite"] == suite) & (runs["status"] == "ok")]
    a = ok[ok["strategy"] == method].set_index("seed")[score]
    b = ok[ok["strategy"] == CONTROL].set_index("seed")[score]
    seeds = sorted(set(a.index) & set(b.index))
    return np.array([float(a[s]) - float(b[s]) for s in seeds])


def t_interval(d: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    n = d.size
    if n < 2:
        return (float(d.mean()) if n else math.nan, math.nan, math.nan)
    m, se = float(d.mean()), float(d.std(ddof=1) / math.sqrt(n))
    q = float(sps.t.ppf(0.5 + level / 2, n - 1))
    return m, m - q * se, m + q * se


def bootstrap_interval(d: np.ndarray, level: float = 0.95, resamples: int = 10_000, seed: int = 0):
    if d.size < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(resamples, d.size))].mean(axis=1)
    return float(np.quantile(means, (1 - level) / 2)), float(np.quantile(means, (1 + level) / 2))


def wilcoxon_p(d: np.ndarray) -> float:
    if d.size < 2 or np.all(d == 0):
        return math.nan
    return float(sps.wilcoxon(d, alternative="two-sided").pvalue)


def analyse(runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for suite in sorted(runs["suite"].unique()):
        for method in METHODS:
            d = paired(runs, suite, method, PRIMARY)
            if d.size == 0:
                continue
            m, lo, hi = t_interval(d)
            blo, bhi = bootstrap_interval(d)
            d2 = paired(runs, suite, method, SECONDARY)
            m2, lo2, hi2 = t_interval(d2)
            rows.append(
                {
                    "suite": suite,
                    "method": method,
                    "n": d.size,
                    "mean": m,
                    "t_lo": lo,
                    "t_hi": hi,
                    "boot_lo": blo,
                    "boot_hi": bhi,
                    "p_wilcoxon": wilcoxon_p(d),
                    "out_mean": m2,
                    "out_lo": lo2,
                    "out_hi": hi2,
                }
            )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["p_holm"] = holm(frame["p_wilcoxon"].to_numpy(float))
    frame["verdict"] = [
        ("better" if m > 0 else "worse") if (math.isfinite(q) and q < ALPHA) else "no difference"
        for m, q in zip(frame["mean"], frame["p_holm"])
    ]
    return frame


def overall(frame: pd.DataFrame) -> dict[str, str]:
    """A method beats (or loses to) the control overall only with the same significant sign on every suite."""
    out = {}
    n_suites = frame["suite"].nunique()
    for method, g in frame.groupby("method"):
        v = set(g["verdict"])
        out[method] = v.pop() if len(g) == n_suites and len(v) == 1 and "no difference" not in v else "not shown"
    return out


def final_weights(online: pd.DataFrame) -> pd.DataFrame:
    last = online[online["step"] == online.groupby(["suite", "strategy", "seed"])["step"].transform("max")]
    wcols = [c for c in online.columns if c.startswith("w:")]
    return last.groupby(["suite", "strategy"])[wcols].mean()


def bases_by_suite(results: Path) -> dict[str, set[str]]:
    """The base models' weight hashes the stored runs were trained from, per suite (from each run's provenance)."""
    import json

    out: dict[str, set[str]] = {}
    for f in sorted((results / "store" / "runs").glob("*/*.json")):
        rec = json.loads(f.read_text())
        suite = str(rec.get("spec", {}).get("suite", "?")).split("@")[0]
        out.setdefault(suite, set()).add(str(rec.get("provenance", {}).get("base_weights_sha256", "unknown")))
    return out


def check_one_base(results: Path) -> None:
    """Paired differences are only meaningful on one base model: runs built on another machine's base (the
    warm-up rounds differently on AVX-512 and AVX2; see the pre-registration's addendum) must not be mixed in."""
    mixed = {s: sorted(b) for s, b in bases_by_suite(results).items() if len(b) > 1}
    if mixed:
        raise SystemExit(
            f"{results}: runs of one suite were trained from different base weights {mixed}; "
            "re-run them on one machine (or analyse each base apart)"
        )


def _f(x: float, d: int = 4) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:+.{d}f}"


def render(new: Path, old: Path | None) -> str:
    check_one_base(new)
    runs = pd.read_csv(new / "online_runs.csv")
    frame = analyse(runs)
    lines = [
        f"# Online re-record (issue 23): {PRIMARY} paired against `{CONTROL}`",
        "",
        f"Results: `{new}` ({len(runs)} runs, {int((runs['status'] == 'ok').sum())} ok). "
        "Pre-registration: `tests/benchmarks/online_rerecord_preregistration.md`.",
        "",
        "| suite | method | pairs | mean diff | 95% t CI | 95% bootstrap CI | Wilcoxon p | Holm p | verdict "
        "| Out_Score diff [95% t CI] |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in frame.itertuples():
        lines.append(
            f"| {r.suite} | {r.method} | {r.n} | {_f(r.mean)} | [{_f(r.t_lo)}, {_f(r.t_hi)}] "
            f"| [{_f(r.boot_lo)}, {_f(r.boot_hi)}] | {r.p_wilcoxon:.3g} | {r.p_holm:.3g} | {r.verdict} "
            f"| {_f(r.out_mean)} [{_f(r.out_lo)}, {_f(r.out_hi)}] |"
        )
    lines += [
        "",
        "Overall (same significant sign on both suites): " + ", ".join(f"`{m}` {v}" for m, v in overall(frame).items()),
        "",
    ]
    ctl = (
        runs[(runs["strategy"] == CONTROL) & (runs["status"] == "ok")]
        .groupby("suite")[PRIMARY]
        .agg(["mean", "std", "count"])
    )
    lines += [
        "Control level (constant): "
        + "; ".join(f"{s} {r['mean']:.4f} (sd {r['std']:.4f}, n {int(r['count'])})" for s, r in ctl.iterrows()),
        "",
    ]
    tstep = runs[runs["status"] == "ok"].groupby("strategy")["t_online_strategy"].mean() / STEPS * 1e3
    lines += [
        "Strategy update time per step (ms, mean over runs): " + ", ".join(f"`{k}` {v:.2f}" for k, v in tstep.items()),
        "",
    ]
    if (new / "online.csv").exists():
        fw = final_weights(pd.read_csv(new / "online.csv"))
        lines += [
            "## Final weights (mean over seeds of the last step's weights)",
            "",
            "| suite | strategy | " + " | ".join(c[2:] for c in fw.columns) + " |",
            "|---|---|" + "---|" * len(fw.columns),
        ]
        for (suite, strat), row in fw.iterrows():
            lines.append(f"| {suite} | {strat} | " + " | ".join(f"{v:.3f}" for v in row) + " |")
        lines.append("")
    if old is not None:
        before = analyse(pd.read_csv(old / "online_runs.csv"))
        lines += [
            "## Before the correction (the runs recorded with the old methods)",
            "",
            "| suite | method | pairs | mean diff | 95% t CI | Wilcoxon p |",
            "|---|---|---|---|---|---|",
        ]
        for r in before.itertuples():
            lines.append(
                f"| {r.suite} | {r.method} | {r.n} | {_f(r.mean)} | [{_f(r.t_lo)}, {_f(r.t_hi)}] | {r.p_wilcoxon:.3g} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--new", type=Path, default=Path("baselines/online"))
    ap.add_argument("--old", type=Path, default=None)
    a = ap.parse_args()
    print(render(a.new, a.old))


if __name__ == "__main__":
    main()
