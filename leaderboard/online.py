"""The online track's statistics: one training run per seed, the domain weights changing during it.

Per online suite and strategy (printed on the site too):
- *score*: the trained model's suite metric (e.g. Out_Score), mean over the successful runs [95% t-interval].
- *paired difference vs constant*: for every strategy other than the `constant` control, its score minus the
  control's on the same seed, over the seeds both ran successfully (a seed only one of them ran is left out),
  for the suite metric and In_Score / Out_Score where online_runs.csv has them; the mean with its 95% paired
  t-interval (it covers 95% under normal seed noise at 8 seeds, where a percentile bootstrap covers about 88%).
- *SNR of the difference*: |mean difference| / its standard error (sd over seeds / √seeds): about how many
  standard errors the difference is from 0 (∞ when every seed gives the same non-zero difference).
- *overhead*: the run's cost in run-equivalents minus 1 (the measured share of the online machinery), and the
  online machinery's seconds per training step (t_online / steps, in ms) where the runs recorded them.
- *verdict*: the paired t-test of each difference, Holm-corrected over every comparison on the suite (strategies
  × scores): a strategy beats the control on a metric when the Holm-adjusted p < 0.05 and the difference is on the
  better side, does worse on the other side; otherwise it cannot be told from the control. No verdict at all
  with fewer than MIN_PAIRS paired seeds (below 6 pairs no sign-flip test can reach p < 0.05, and a t-test on
  2 seeds whose differences happen to agree reports a tiny p from a variance it cannot estimate).
- *seeds for 0.01*: how many paired seeds a true difference of 0.01 would need to be detected with 80% power
  (two-sided paired t-test, α = 0.05), from the pooled sd of the suite's paired differences on that score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from leaderboard import evidence as ev
from leaderboard.data import Results
from leaderboard.results_folder import PROMPTS_PREFIX, WEIGHT_PREFIX, live_suite_name

CONTROL = "constant"
# the scores compared against the control, besides the suite's own metric, where online_runs.csv has them
COMPARED_SCORES = ["Out_Score", "In_Score"]
SE_ZERO = 1e-12  # a standard error this small is a difference that is the same on every seed
MIN_PAIRS = 6  # fewest paired seeds for any verdict: 2/2^6 = 0.031 is the smallest two-sided sign-flip p at 6
TARGET_DIFF = 0.01

TABLE_COLUMNS = [
    "suite",
    "strategy",
    "family",
    "runs",
    "n_ok",
    "n_failed",
    "score_mean",
    "score_lo",
    "score_hi",
    "cost_mean",
    "overhead_mean",
    "ms_per_step",
    "ms_strategy_per_step",
    "steps",
    "weight_shift",
]
PAIRED_COLUMNS = [
    "suite",
    "strategy",
    "metric",
    "n_pairs",
    "diff_mean",
    "diff_lo",
    "diff_hi",
    "diff_se",
    "snr",
    "p",
    "p_holm",
    "verdict",
]


@dataclass
class OnlineStats:
    table: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=TABLE_COLUMNS))
    paired: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PAIRED_COLUMNS))
    weights: pd.DataFrame = field(default_factory=pd.DataFrame)  # mean weight per (suite, strategy, step, domain)
    metrics: dict[str, list[str]] = field(default_factory=dict)  # suite -> the scores compared, metric first
    verdicts: dict[str, list[str]] = field(default_factory=dict)  # suite -> one sentence per compared score
    seeds_for_target: dict[str, dict[str, int | None]] = field(default_factory=dict)  # suite -> score -> seeds

    @property
    def suites(self) -> list[str]:
        return sorted(set(self.table["suite"]))


def runs_of(results: Results, suite: str) -> pd.DataFrame:
    """The online runs of one suite: online_runs.csv's rows, else (a folder from before that file) summary.csv's."""
    runs = results.online_runs
    if len(runs) and (runs["suite"] == suite).any():
        return runs[runs["suite"] == suite].reset_index(drop=True)
    s = results.summary[results.summary["suite"] == suite]
    return s[["suite", "strategy", "seed", "status", "score", "cost_used"]].reset_index(drop=True)


def compared_metrics(runs: pd.DataFrame, metric: str) -> list[str]:
    """`score` (the suite metric) first, then every other score of COMPARED_SCORES the runs recorded."""
    return ["score"] + [m for m in COMPARED_SCORES if m != metric and m in runs.columns]


def metric_label(metric: str, suite_metric: str) -> str:
    return suite_metric if metric == "score" else metric


def standard_error(x: np.ndarray) -> float:
    return float(x.std(ddof=1) / math.sqrt(x.size)) if x.size >= 2 else math.nan


def snr(mean: float, se: float) -> float:
    """|mean| / se; inf when se is 0 and the mean is not (a difference identical on every seed)."""
    if not (math.isfinite(mean) and math.isfinite(se)):
        return math.nan
    if se <= SE_ZERO * max(1.0, abs(mean)):
        return math.inf if abs(mean) > SE_ZERO else math.nan
    return abs(mean) / se


def paired_difference(
    runs: pd.DataFrame, strategy: str, column: str, *key: Any, control: str = CONTROL
) -> dict[str, Any]:
    """`strategy` minus `control` on `column`, over the seeds where both runs succeeded with a value."""

    def by_seed(name: str) -> pd.Series:
        g = runs[(runs["strategy"] == name) & (runs["status"].astype(str) == "ok")]
        return pd.to_numeric(g.set_index("seed")[column], errors="coerce").dropna()

    a, b = by_seed(strategy), by_seed(control)
    seeds = sorted(set(a.index) & set(b.index))
    d = np.array([float(a[s]) - float(b[s]) for s in seeds])
    t = ev.paired_t(d, ev.LEVEL)
    se = standard_error(d)
    return {
        "n_pairs": len(seeds),
        "diff_mean": t["mean"],
        "diff_lo": t["lo"],
        "diff_hi": t["hi"],
        "diff_se": se,
        "snr": snr(t["mean"], se),
        "p": t["p"],
        "seeds": seeds,
        "diffs": d,
    }


def holm_verdicts(frame: pd.DataFrame, maximize: bool, alpha: float = ev.ALPHA) -> pd.DataFrame:
    """Holm over every comparison of the frame (one suite's strategies × scores), then each row's verdict:
    'better' / 'worse' (adjusted p < alpha, by the side of the mean), 'same', or 'too few seeds'."""
    frame = frame.copy()
    enough = frame["n_pairs"] >= MIN_PAIRS
    p = np.where(enough, frame["p"].to_numpy(float), np.nan)
    frame["p_holm"] = ev.holm(p)
    verdicts = []
    for ok, q, m in zip(enough, frame["p_holm"], frame["diff_mean"]):
        if not ok:
            verdicts.append("too few seeds")
        elif math.isfinite(q) and q < alpha:
            verdicts.append("better" if (m > 0) == maximize else "worse")
        elif math.isfinite(q):
            verdicts.append("same")
        else:
            verdicts.append("unknown")
    frame["verdict"] = verdicts
    return frame


def side(lo: float, hi: float, maximize: bool) -> str:
    """'better' / 'worse' when the whole CI is on one side of 0 (oriented by the goal), else 'same'."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "unknown"
    if lo > 0 or hi < 0:
        return "better" if (lo > 0) == maximize else "worse"
    return "same"


def verdict_line(paired: pd.DataFrame, label: str) -> str:
    """One sentence per compared score: who beats the control, who does worse, or that nobody can be told apart."""
    better = sorted(paired.loc[paired["verdict"] == "better", "strategy"])
    worse = sorted(paired.loc[paired["verdict"] == "worse", "strategy"])
    few = sorted(paired.loc[paired["verdict"] == "too few seeds", "strategy"])
    if paired.empty or (paired["verdict"] == "unknown").all():
        return f"{label}: no paired runs against the {CONTROL} control to compare."
    tail = f"; no verdict for {', '.join(few)} (fewer than {MIN_PAIRS} paired seeds)" if few else ""
    if not better and not worse:
        if len(few) == len(paired):
            return (
                f"no verdict on {label}: fewer than {MIN_PAIRS} paired seeds against the {CONTROL} control "
                f"({', '.join(few)})"
            )
        return (
            f"no online strategy beats the {CONTROL} control on {label} (paired t-test, Holm-corrected over "
            f"the comparisons on this suite, α = 0.05)" + tail
        )
    parts = []
    if better:
        parts.append(
            f"{', '.join(better)} {'beats' if len(better) == 1 else 'beat'} the {CONTROL} control on {label} "
            f"(paired t-test, Holm-adjusted p < 0.05)"
        )
    else:
        parts.append(f"no online strategy beats the {CONTROL} control on {label}")
    if worse:
        parts.append(
            f"{', '.join(worse)} {'does' if len(worse) == 1 else 'do'} worse (paired t-test, Holm-adjusted p < 0.05)"
        )
    return "; ".join(parts) + tail


def _steps_per_run(results: Results, suite: str) -> dict[tuple[str, int], int]:
    s = results.online_steps
    if s.empty:
        return {}
    g = s[s["suite"] == suite].groupby(["strategy", "seed"]).size()
    return {(str(k[0]), int(k[1])): int(v) for k, v in g.items()}


def _ms_per_step(ok: pd.DataFrame, column: str, steps: dict[tuple[str, int], int]) -> float:
    if column not in ok.columns:
        return math.nan
    vals = [
        1000.0 * float(t) / steps[(str(st), int(sd))]
        for st, sd, t in zip(ok["strategy"], ok["seed"], ok[column])
        if pd.notna(t) and steps.get((str(st), int(sd)))
    ]
    return float(np.mean(vals)) if vals else math.nan


def _strategy_row(results: Results, suite: str, strategy: str, g: pd.DataFrame, steps: dict) -> dict[str, Any]:
    ok = g[g["status"].astype(str) == "ok"]
    mean, lo, hi = ev.t_interval(pd.to_numeric(ok["score"], errors="coerce").to_numpy(float))
    cost = pd.to_numeric(ok["cost_used"], errors="coerce").dropna()
    n_steps = [steps[(strategy, int(sd))] for sd in ok["seed"] if (strategy, int(sd)) in steps]
    return {
        "suite": suite,
        "strategy": strategy,
        "family": results.strategies.get(strategy, {}).get("family", "online"),
        "runs": int(len(g)),
        "n_ok": int(len(ok)),
        "n_failed": int(len(g) - len(ok)),
        "score_mean": mean,
        "score_lo": lo,
        "score_hi": hi,
        "cost_mean": float(cost.mean()) if len(cost) else math.nan,
        "overhead_mean": float((cost - 1.0).mean()) if len(cost) else math.nan,
        "ms_per_step": _ms_per_step(ok, "t_online", steps),
        "ms_strategy_per_step": _ms_per_step(ok, "t_online_strategy", steps),
        "steps": float(np.mean(n_steps)) if n_steps else math.nan,
        "weight_shift": weight_shift(results, suite, strategy),
    }


def weight_shift(results: Results, suite: str, strategy: str) -> float:
    """How far the weights moved: the mean over runs and steps of the total-variation distance between a step's
    weights and its run's first step's (0 for the control). A strategy that barely moves still draws other
    prompts than the control, so its paired difference then measures run-to-run noise, not adaptation."""
    st = results.online_steps
    if st.empty:
        return math.nan
    g = st[(st["suite"] == suite) & (st["strategy"] == strategy)]
    cols = [c for c in g.columns if c.startswith(WEIGHT_PREFIX)]
    if g.empty or not cols:
        return math.nan
    shifts = []
    for _, run in g.sort_values("step").groupby("seed"):
        w = run[cols].to_numpy(float)
        shifts.append(0.5 * np.abs(w - w[0]).sum(axis=1).mean())
    return float(np.mean(shifts))


def mean_weights(results: Results, suite: str) -> pd.DataFrame:
    """Mean over seeds of each domain's weight, per (strategy, step): the weight-trajectory picture's data."""
    s = results.online_steps
    cols = ["suite", "strategy", "step", "domain", "weight_mean", "prompts_mean", "n"]
    if s.empty:
        return pd.DataFrame(columns=cols)
    s = s[s["suite"] == suite]
    domains = [c[len(WEIGHT_PREFIX) :] for c in s.columns if c.startswith(WEIGHT_PREFIX) and s[c].notna().any()]
    rows = []
    for (strategy, step), g in s.groupby(["strategy", "step"], sort=True):
        for d in domains:
            n = g.get(f"{PROMPTS_PREFIX}{d}")
            rows.append(
                {
                    "suite": suite,
                    "strategy": strategy,
                    "step": int(step),
                    "domain": d,
                    "weight_mean": float(g[f"{WEIGHT_PREFIX}{d}"].mean()),
                    "prompts_mean": float(n.mean()) if n is not None else math.nan,
                    "n": int(len(g)),
                }
            )
    return pd.DataFrame(rows, columns=cols)


def compute_online(results: Results) -> OnlineStats:
    out = OnlineStats()
    tables, paired, weights = [], [], []
    for suite in results.online_suite_names:
        entry = results.suites[suite]
        maximize = results.goal(suite) != "min"
        suite_metric = str(entry.get("metric") or "score")
        runs = runs_of(results, suite)
        if runs.empty:
            continue
        steps = _steps_per_run(results, suite)
        tables += [_strategy_row(results, suite, str(n), g, steps) for n, g in runs.groupby("strategy", sort=True)]
        metrics = compared_metrics(runs, suite_metric)
        out.metrics[suite] = [metric_label(m, suite_metric) for m in metrics]
        others = sorted(n for n in set(runs["strategy"]) if n != CONTROL)
        frames, diffs = [], {}
        for m in metrics:
            rows = []
            for n in others if (runs["strategy"] == CONTROL).any() else []:
                d = paired_difference(runs, n, m, suite)
                diffs.setdefault(metric_label(m, suite_metric), []).append(d["diffs"])
                rows.append(
                    {
                        "suite": suite,
                        "strategy": n,
                        "metric": metric_label(m, suite_metric),
                        **{k: v for k, v in d.items() if k not in ("seeds", "diffs")},
                        "p_holm": math.nan,
                        "verdict": "unknown",
                    }
                )
            frames.append(pd.DataFrame(rows, columns=PAIRED_COLUMNS))
        if any(len(f) for f in frames):  # Holm over every comparison on this suite (strategies x scores)
            judged = holm_verdicts(pd.concat([f for f in frames if len(f)], ignore_index=True), maximize)
            frames = [judged[judged["metric"] == metric_label(m, suite_metric)].reset_index(drop=True) for m in metrics]
        lines = [verdict_line(f, metric_label(m, suite_metric)) for f, m in zip(frames, metrics)]
        paired += frames
        need = {}
        for label, ds in diffs.items():  # pooled sd of the paired differences on this score
            var = [float(np.var(x, ddof=1)) for x in ds if len(x) >= 2]
            need[label] = ev.seeds_needed(math.sqrt(float(np.mean(var))), TARGET_DIFF) if var else None
        out.seeds_for_target[suite] = need
        n_cmp = sum(len(f) for f in frames)
        if n_cmp:
            lines.append(
                f"{n_cmp} paired comparisons on this suite, Holm-corrected together; no verdict below "
                f"{MIN_PAIRS} paired seeds; "
                + "; ".join(
                    f"a true difference of {TARGET_DIFF:g} in {k} would need "
                    f"{v if v is not None else 'more than 100000'} seeds to be detected (80% power)"
                    for k, v in need.items()
                )
            )
        out.verdicts[suite] = lines
        weights.append(mean_weights(results, suite))
    if tables:
        out.table = pd.DataFrame(tables, columns=TABLE_COLUMNS)
    paired = [p for p in paired if len(p)]
    if paired:
        out.paired = pd.concat(paired, ignore_index=True)
    weights = [w for w in weights if len(w)]
    if weights:
        out.weights = pd.concat(weights, ignore_index=True)
    return out


def offline_match(results: Results, suite: str) -> str | None:
    """The offline suite recorded from this online suite's live suite, with the same metric (e.g.
    minimodo-tiny for minimodo-tiny-live:online on Out_Score): where its strategies' costs and scores come from."""
    entry = results.suites[suite]
    live, metric = live_suite_name(entry), str(entry.get("metric") or "")
    for name in results.suite_names:
        card = results.suites[name].get("card") or {}
        proto = card.get("protocol") if isinstance(card.get("protocol"), dict) else {}
        if str(proto.get("recorded_from") or "") == live and str(results.suites[name].get("metric") or "") == metric:
            return name
    return None
