"""The leaderboard's statistics, per (suite, strategy, budget) over seeds. Deterministic.

Conventions (also printed on the site):
- *score*: the suite metric of the recommended mixture, as scored by the suite's oracle.
- *gain over uniform*: score minus the uniform mixture's score, oriented so that positive is better
  whatever the suite's direction (for a "max" suite it equals summary.csv's gain_over_uniform).
- *normalised regret*: (best known − score) / |best known − worst known| (lower is better).
- *AUC*: the mean, over pilot runs 1..budget, of the normalised regret of the best pilot so far (the
  area under the best-so-far curve divided by the budget; lower is better). Before the first
  successful pilot the regret counts as 1; a strategy that stops early keeps its last value. A
  strategy that spends no pilot runs (uniform) has no curve and no AUC. In the pool track the curve is
  the judge's statistic: the per-mixture mean of the mixture whose pilot has been best so far (a single
  lucky seed never takes it below 0); elsewhere the best pilot's own score.
- *rank*: within each (suite, budget, seed), strategies are ranked by score (1 = best, ties share
  the average rank; a failed study ranks last); the mean over seeds is reported. The overall rank
  (leaderboard/ranking.py) is per track, over the suites that can rank (each suite one data set, its
  strategies ranked by their mean over seeds), among the strategies complete on all of them, with
  Friedman's test, Nemenyi's CD with N = suites, and a hierarchical bootstrap (suites, then seeds).
- *CI*: the 95% Student t-interval of the mean over seeds (it covers 95% under normal seed noise at
  8 seeds, where a percentile bootstrap covers about 90%; tests/test_leaderboard_evidence.py).
- *within a suite* (leaderboard/within_suite.py): paired sign-flip tests over seeds against random
  (Holm), the "best" mark (separable from every other strategy), and the minimum detectable difference.
- *beats uniform*: the number k of seeds whose score is strictly better than uniform's, out of the K
  successful seeds, with the one-sided exact sign-test p-value (ties dropped).
- *rank correlation*: for two suites (e.g. two base models) and a budget, Spearman's ρ and
  Kendall's τ between the strategies' mean normalised regrets, over the strategies both ran
  (at least 3); ρ's 95% bootstrap interval resamples the shared strategies and each suite's seeds.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from harness.suites.base import normalised_regret
from leaderboard import evidence as ev
from leaderboard.data import Results, budget_value, offline_only

BOOTSTRAP_RESAMPLES = 2000
CI_LEVEL = 0.95
TIE_TOL = 1e-12
MIN_SHARED_FOR_CORR = 3
TABLE_COLUMNS = (
    ["suite", "strategy", "budget", "family", "n_seeds", "n_ok", "n_failed"]
    + [f"{n}_{p}" for n in ("score", "gain", "nregret", "auc", "rank") for p in ("mean", "lo", "hi")]
    + ["surrogate_fraction", "n_beyond_best", "beats_uniform", "loses_to_uniform", "ties_uniform", "K", "p_sign"]
)


def _seed(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).digest()[:8], "little")


def bootstrap_ci(
    values, *key: Any, resamples: int = BOOTSTRAP_RESAMPLES, level: float = CI_LEVEL
) -> tuple[float, float, float]:
    """(mean, low, high) of the mean; NaNs dropped; deterministic for a given key."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size == 1 or np.all(x == x[0]):
        return mean, mean, mean
    rng = np.random.default_rng(_seed("bootstrap", *key))
    idx = rng.integers(0, x.size, size=(resamples, x.size))
    means = np.sort(x[idx].mean(axis=1))
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return mean, float(lo), float(hi)


def sign_test(diffs) -> dict[str, Any]:
    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    wins, losses = int((d > TIE_TOL).sum()), int((d < -TIE_TOL).sum())
    ties = int(d.size - wins - losses)
    p = float(sps.binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue) if wins + losses else math.nan
    return {"wins": wins, "losses": losses, "ties": ties, "K": int(d.size), "p_value": p}


def study_auc(traj: pd.DataFrame, budget: int, best: float, worst: float, maximize: bool) -> float:
    """Mean normalised regret of the best pilot so far over pilot runs 1..budget (see module doc)."""
    if budget <= 0 or len(traj) == 0:
        return math.nan
    return float(best_so_far_curve(traj, budget, best, worst, maximize).mean())


def best_so_far_curve(traj, budget: int, best: float, worst: float, maximize: bool) -> np.ndarray:
    """Normalised regret of the best pilot after 1..budget runs (1 before a success; carried forward).

    `traj` is a DataFrame with step and best_so_far, or a (steps, best_so_far) pair of arrays.
    """
    if isinstance(traj, pd.DataFrame):
        steps, bsf = traj["step"].to_numpy(dtype=float), traj["best_so_far"].to_numpy(dtype=float)
    else:
        steps, bsf = (np.asarray(a, dtype=float) for a in traj)
    order = np.argsort(steps, kind="stable")
    steps, bsf = steps[order], bsf[order]
    reg = normalised_regret(bsf, best, worst, maximize)[1]  # the judge's rule (harness.suites.base)
    n = int(math.ceil(float(budget) - 1e-9))  # a fractional budget's last pilot still counts
    out = np.ones(n)
    current, j = 1.0, 0
    for t in range(n):
        while j < len(steps) and steps[j] <= t:
            if np.isfinite(reg[j]):
                current = float(reg[j])
            j += 1
        out[t] = current
    return out


def pool_means(results: Results, suite: str) -> dict[str, float] | None:
    """The judge's per-mixture means of a pool-track suite, keyed by the trajectories' mixture text (None where the
    suite is not a pool or cannot be loaded here: its curves then use the pilots' own scores)."""
    from leaderboard.ranking import suite_track

    entry = results.suites[suite]
    if suite_track(entry) != "pool":
        return None
    try:
        from harness.mixture import Mixture
        from harness.suites.loading import load
        from harness.suites.tracks import Judge

        judge = Judge.of(load(entry.get("path") or entry.get("suite") or suite), "pool")
    except Exception:  # noqa: BLE001 - a suite not on this machine: the pilots' scores, as before
        return None
    traj = results.trajectories
    texts = set(traj.loc[traj["suite"] == suite, "mixture"].dropna()) if "mixture" in traj.columns else set()
    out = {}
    for text in texts:
        try:
            out[text] = float(judge.oracle(Mixture(json.loads(text)))[0])
        except Exception:  # noqa: BLE001 - not a candidate (should not happen in a pool): left out
            continue
    return out


def _judged(steps, values, mixtures, fid, means: dict[str, float], maximize: bool) -> np.ndarray:
    """Best so far by the judge's statistic: after each pilot, the per-mixture mean of the mixture whose full-fidelity
    pilot scored best so far (NaN before the first)."""
    out = np.full(len(steps), np.nan)
    best_v, best_m = None, None
    for i in np.argsort(steps, kind="stable"):
        v = values[i]
        if np.isfinite(v) and (not np.isfinite(fid[i]) or fid[i] >= 1.0 - 1e-9) and mixtures[i] in means:
            if best_v is None or (v > best_v if maximize else v < best_v):
                best_v, best_m = v, mixtures[i]
        out[i] = means[best_m] if best_m is not None else np.nan
    return out


def study_curves(results: Results) -> dict[tuple, np.ndarray]:
    """(suite, strategy, budget, seed) -> best-so-far regret curve, for every successful study with pilots."""
    traj = results.trajectories
    out: dict[tuple, np.ndarray] = {}
    if traj.empty:
        return out
    ok = results.summary[results.summary["status"].astype(str) == "ok"]
    okkeys = set(zip(ok["suite"], ok["strategy"], map(budget_value, ok["budget"]), ok["seed"].astype(int)))
    steps = pd.to_numeric(traj["step"], errors="coerce").to_numpy(float)
    if "spent" in traj.columns:
        # the curve's axis is run-equivalents: a pilot counts once its cumulative cost is spent (a full run
        # at step t has spent t + 1, so single-fidelity curves are unchanged; older tables lack the column)
        spent = pd.to_numeric(traj["spent"], errors="coerce").to_numpy(float)
        steps = np.where(np.isfinite(spent), np.ceil(spent - 1e-9) - 1, steps)
    bsf = pd.to_numeric(traj["best_so_far"], errors="coerce").to_numpy(float)
    values = pd.to_numeric(traj.get("value", pd.Series(np.nan, index=traj.index)), errors="coerce").to_numpy(float)
    fid = pd.to_numeric(traj.get("fidelity", pd.Series(np.nan, index=traj.index)), errors="coerce").to_numpy(float)
    mixtures = traj["mixture"].to_numpy(object) if "mixture" in traj.columns else np.full(len(traj), None)
    means = {n: pool_means(results, n) for n in set(traj["suite"]) if n in results.suites}
    for key, idx in traj.groupby(["suite", "strategy", "budget", "seed"], sort=True).indices.items():
        key = (key[0], key[1], budget_value(key[2]), int(key[3]))
        if key not in okkeys or key[2] <= 0:
            continue
        e = results.suites[key[0]]
        maximize = results.goal(key[0]) != "min"
        curve = bsf[idx]
        if means.get(key[0]):
            curve = _judged(steps[idx], values[idx], mixtures[idx], fid[idx], means[key[0]], maximize)
        out[key] = best_so_far_curve(
            (steps[idx], curve), key[2], float(e["best_known"]), float(e["worst_known"]), maximize
        )
    return out


@dataclass
class Stats:
    table: pd.DataFrame  # one row per (suite, strategy, budget)
    overall: pd.DataFrame  # one row per (track, suite family, budget, strategy): rank over the suites that can
    # rank, complete strategies only (leaderboard/ranking.py)
    rank_corr: pd.DataFrame  # one row per (suite_a, suite_b, budget)
    studies: pd.DataFrame  # the per-study table (summary + oriented gain, auc, rank)
    curves: pd.DataFrame  # mean best-so-far regret per (suite, strategy, budget, step)
    weights: pd.DataFrame  # mean recommended weight per (suite, strategy, budget, dataset)
    rankings: list = field(default_factory=list)  # leaderboard.ranking.TrackRanking per (track, budget)
    online: Any = None  # leaderboard.online.OnlineStats: the online track, compared apart
    suite_evidence: pd.DataFrame = field(default_factory=pd.DataFrame)  # per (suite, budget): MDD, best (within_suite)
    vs_random: pd.DataFrame = field(default_factory=pd.DataFrame)  # per (suite, budget, strategy): vs random


def per_study(results: Results, curves: dict | None = None) -> pd.DataFrame:
    s = results.summary.copy()
    ok = s["status"].astype(str) == "ok"
    s["ok"] = ok
    s["score"] = pd.to_numeric(s["score"], errors="coerce")
    s["normalized_regret"] = pd.to_numeric(s["normalized_regret"], errors="coerce")
    s["uniform_score"] = pd.to_numeric(s["uniform_score"], errors="coerce")
    maximize = s["suite"].map(lambda n: results.goal(n) != "min")
    sign = np.where(maximize, 1.0, -1.0)
    s["oriented"] = np.where(ok, s["score"] * sign, -np.inf)
    s["gain"] = np.where(ok, (s["score"] - s["uniform_score"]) * sign, np.nan)
    s.loc[~ok, ["score", "normalized_regret"]] = np.nan
    s["rank"] = s.groupby(["suite", "budget", "seed"])["oriented"].rank(ascending=False, method="average")

    curves = study_curves(results) if curves is None else curves
    s["auc"] = [
        float(curves[k].mean()) if k in curves else np.nan
        for k in zip(s["suite"], s["strategy"], map(budget_value, s["budget"]), s["seed"].astype(int))
    ]
    return s


def _cell(g: pd.DataFrame, key: tuple) -> dict[str, Any]:
    # columns as arrays once (a frame filter and a string method per cell cost ~10 ms of pandas; 1,500 cells)
    ok = g["ok"].to_numpy(bool)
    row: dict[str, Any] = {"n_seeds": int(len(g)), "n_ok": int(ok.sum()), "n_failed": int((~ok).sum())}
    for col, name in (
        ("score", "score"),
        ("gain", "gain"),
        ("normalized_regret", "nregret"),
        ("auc", "auc"),
        ("rank", "rank"),
    ):
        vals = g[col].to_numpy(float)
        m, lo, hi = ev.t_interval(vals if col == "rank" else vals[ok])
        row[f"{name}_mean"], row[f"{name}_lo"], row[f"{name}_hi"] = m, lo, hi
    # where the numbers came from: the share of surrogate answers (pilots and recommendation) and how many
    # recommendations a surrogate scored above every measured mixture (harness/suites/tracks.py)
    sur = g["surrogate_fraction"] if "surrogate_fraction" in g else pd.Series([], dtype=float)
    sur = pd.to_numeric(sur, errors="coerce").fillna(0.0).to_numpy(float)
    row["surrogate_fraction"] = float(sur.mean()) if len(sur) else 0.0
    beyond = g["beyond_best_known"].to_numpy(object) if "beyond_best_known" in g else ()
    row["n_beyond_best"] = sum(str(v).lower() in ("true", "1") for v in beyond)  # a bool, 1 or their text
    st = sign_test(g["gain"].to_numpy(float)[ok])
    row.update(
        {
            "beats_uniform": st["wins"],
            "loses_to_uniform": st["losses"],
            "ties_uniform": st["ties"],
            "K": st["K"],
            "p_sign": st["p_value"],
        }
    )
    return row


def _seed_matrix(
    studies: pd.DataFrame | None, suite: str, budget, shared: list[str], cache: dict | None = None
) -> np.ndarray | None:
    if studies is None:
        return None
    cache = {} if cache is None else cache
    if (suite, budget) not in cache:
        cache[(suite, budget)] = _seed_pivot(studies, suite, budget)
    m = cache[(suite, budget)].reindex(columns=shared).dropna()
    return m.to_numpy(float) if len(m) >= 2 else None


def _seed_pivot(studies: pd.DataFrame, suite: str, budget) -> pd.DataFrame:
    """A suite's normalised regrets at a budget: seeds x strategies (successful studies)."""
    g = studies[(studies["suite"] == suite) & (studies["budget"] == budget) & studies["ok"]]
    return g.pivot_table(index="seed", columns="strategy", values="normalized_regret", aggfunc="first")


def _rank_corr(table: pd.DataFrame, results: Results, studies: pd.DataFrame | None = None) -> pd.DataFrame:
    from leaderboard.parallel import run_all

    suites = sorted(set(table["suite"]))
    budgets = sorted(set(table["budget"]))
    # each suite's strategy means and seed matrix once per budget, then every pair of suites in pieces side by side
    means, cache = {}, {}
    for budget in budgets:
        tb = table[(table["budget"] == budget) & np.isfinite(table["nregret_mean"])]
        for a in suites:
            means[(a, budget)] = tb[tb["suite"] == a].set_index("strategy")["nregret_mean"]
            if studies is not None and len(means[(a, budget)]) >= MIN_SHARED_FOR_CORR:  # (a pair may need it)
                cache[(a, budget)] = _seed_pivot(studies, a, budget)
    pieces = [
        lambda budget=budget, i=i: _rank_corr_rows(results, studies, means, cache, budget, suites, i)
        for budget in budgets
        for i in range(len(suites) - 1)
    ]
    rows = [row for part in run_all(pieces) for row in part]
    # spearman_p: two-sided p-value of rho = 0 over the shared strategies; [spearman_lo, spearman_hi]: 95% bootstrap
    # interval resampling the shared strategies and each suite's seeds (how much rho moves with both)
    return pd.DataFrame(rows, columns=RANK_CORR_COLUMNS)


RANK_CORR_COLUMNS = (
    "suite_a suite_b budget n_shared base_model_a base_model_b spearman spearman_lo spearman_hi spearman_p kendall "
    "strategies"
).split()


def _rank_corr_rows(
    results: Results, studies, means: dict, cache: dict, budget, suites: list[str], i: int
) -> list[dict[str, Any]]:
    """The rank correlations at `budget` of suite i with every suite after it (in `suites`' order)."""
    rows = []
    a = suites[i]
    for b in suites[i + 1 :]:
        A, B = means[(a, budget)], means[(b, budget)]
        shared = sorted(set(A.index) & set(B.index))
        rho = tau = rho_p = lo = hi = math.nan
        if len(shared) >= MIN_SHARED_FOR_CORR:
            x, y = A[shared].to_numpy(float), B[shared].to_numpy(float)
            if np.ptp(x) > 0 and np.ptp(y) > 0:
                sp = sps.spearmanr(x, y)
                rho, rho_p = float(sp.statistic), float(sp.pvalue)
                tau = float(sps.kendalltau(x, y).statistic)
                ma = _seed_matrix(studies, a, budget, shared, cache)
                mb = _seed_matrix(studies, b, budget, shared, cache)
                if ma is not None and mb is not None:
                    _, lo, hi = ev.spearman_interval(ma, mb, a, b, budget)
        rows.append(
            {
                "suite_a": a,
                "suite_b": b,
                "budget": budget_value(budget),
                "n_shared": len(shared),
                "base_model_a": base_model(results.suites[a]),
                "base_model_b": base_model(results.suites[b]),
                "spearman": rho,
                "spearman_lo": lo,
                "spearman_hi": hi,
                "spearman_p": rho_p,
                "kendall": tau,
                "strategies": ",".join(shared),
            }
        )
    return rows


def base_model(suite_entry: dict[str, Any]) -> str:
    card = suite_entry.get("card") or {}
    proto = card.get("protocol") if isinstance(card.get("protocol"), dict) else {}
    return str(proto.get("base_model") or card.get("base_model") or "")


def _curves(results: Results, curves: dict[tuple, np.ndarray]) -> pd.DataFrame:
    cols = ["suite", "strategy", "budget", "step", "nregret_mean", "n"]
    groups: dict[tuple, list[np.ndarray]] = {}
    for (suite, strat, budget, _seed), c in sorted(curves.items()):
        groups.setdefault((suite, strat, budget), []).append(c)
    rows = []
    for (suite, strat, budget), cs in sorted(groups.items()):
        mean = np.mean(cs, axis=0)
        rows.extend(
            {
                "suite": suite,
                "strategy": strat,
                "budget": budget_value(budget),
                "step": t + 1,
                "nregret_mean": float(v),
                "n": len(cs),
            }
            for t, v in enumerate(mean)
        )
    return pd.DataFrame(rows, columns=cols)


def _weights(results: Results) -> pd.DataFrame:
    cols = ["suite", "strategy", "budget", "dataset", "weight_mean", "n"]
    s = results.summary[(results.summary["status"].astype(str) == "ok")]
    rows = []
    for (suite, strat, budget), g in s.groupby(["suite", "strategy", "budget"], sort=True):
        mixes = []
        for text in g["recommended"].dropna():
            try:
                mixes.append(json.loads(text))
            except (TypeError, json.JSONDecodeError):
                continue
        if not mixes:
            continue
        card = results.suites[suite].get("card") or {}
        datasets = [str(d) for d in card.get("datasets") or []] or sorted({k for m in mixes for k in m})
        for d in datasets:
            rows.append(
                {
                    "suite": suite,
                    "strategy": strat,
                    "budget": budget_value(budget),
                    "dataset": d,
                    "weight_mean": float(np.mean([float(m.get(d, 0.0)) for m in mixes])),
                    "n": len(mixes),
                }
            )
    return pd.DataFrame(rows, columns=cols)


def compute(results: Results) -> Stats:
    """Every table above over the offline suites; the online suites (one run per seed, no budget) in `online`.

    Independent pieces run side by side over the machine's cores (leaderboard/parallel.py), in three rounds:
    what needs only the results, what needs the per-study table, what needs the per-cell table. Each piece
    computes exactly what the same code computes in one process, and the pieces are put together in order."""
    from leaderboard import within_suite
    from leaderboard.online import compute_online
    from leaderboard.parallel import run_all
    from leaderboard.ranking import RANK_COLUMNS, rank_all, suite_can_rank, suite_track

    everything, results = results, offline_only(results)
    online, curves, weights = run_all(
        [lambda: compute_online(everything), lambda: study_curves(results), lambda: _weights(results)]
    )
    studies = per_study(results, curves)
    can_rank = {n: suite_can_rank(e)[0] for n, e in results.suites.items()}
    groups = list(studies.groupby(["suite", "strategy", "budget"], sort=True))
    chunks = [groups[i : i + CELLS_PER_PIECE] for i in range(0, len(groups), CELLS_PER_PIECE)]
    (evidence, vs_random), rankings, *cell_rows = run_all(
        [
            lambda: within_suite.compute(studies, can_rank),
            lambda: rank_all(studies, results.suites, results.strategies),
            *(lambda chunk=chunk: _cell_rows(results, chunk) for chunk in chunks),
        ]
    )
    rows = [row for part in cell_rows for row in part]
    # the columns named even with no offline study (a results folder of the online track alone)
    table = pd.DataFrame(rows) if rows else pd.DataFrame(columns=TABLE_COLUMNS)

    if len(table):  # pool track: every regret is a recorded mean against the best and worst recorded means, so in
        # [0, 1] by construction; an interval clipped to where the quantity lives covers at least as often
        pool = table["suite"].map(lambda n: suite_track(results.suites[n]) == "pool")
        for c in ("nregret_lo", "nregret_hi", "auc_lo", "auc_hi"):
            table.loc[pool, c] = table.loc[pool, c].clip(0.0, 1.0)
        exact = table["suite"].map(
            lambda n: (
                str((results.suites[n].get("card") or {}).get("kind", results.suites[n].get("kind"))) == "synthetic"
            )
        )  # analytic: regret to the true optimum >= 0
        table.loc[exact, "nregret_lo"] = table.loc[exact, "nregret_lo"].clip(lower=0.0)

    tables = [r.table for r in rankings if len(r.table)]
    overall = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=RANK_COLUMNS)
    return Stats(
        table,
        overall,
        _rank_corr(table, results, studies),
        studies,
        _curves(results, curves),
        weights,
        rankings,
        online,
        evidence,
        vs_random,
    )


CELLS_PER_PIECE = 100  # (suite, strategy, budget) cells per piece of the table (the demo has 1,400)


def _cell_rows(results: Results, groups: list[tuple[tuple, pd.DataFrame]]) -> list[dict[str, Any]]:
    """The table's rows of these (suite, strategy, budget) groups of the per-study table, in their order."""
    rows = []
    for (suite, strat, budget), g in groups:
        key = (suite, strat, budget_value(budget))
        rows.append(
            {
                "suite": suite,
                "strategy": strat,
                "budget": budget_value(budget),
                "family": results.strategies[strat]["family"],
                **_cell(g, key),
            }
        )
    return rows


def _clean(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return None if not math.isfinite(float(v)) else float(f"{float(v):.10g}")
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    return v


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _clean(v) for k, v in r.items()} for r in df.to_dict(orient="records")]
