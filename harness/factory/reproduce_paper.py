"""`modomodo reproduce paper`: the paper's computations, recomputed from its recorded seed runs.

    python -m harness.factory.reproduce_paper [--json] [--out report.md] [--table table2_runs.csv]

1. Every heuristic mixture (Ain, Aout, Abal, Coli, Norm) recomputed from the 11 seed runs of
   Table 2, with the same functions the strategies run (strategies/paper_heuristics.py), printed
   beside the paper's recorded scores for those rows.
2. The quadratic surrogate of Algorithm 4 refitted on the seed runs plus the recomputed heuristic
   mixtures paired with their recorded Out-Scores: its fit (R², leave-one-out error) and its top-10
   proposed mixtures with predicted Out-Scores.
3. The assumptions made where the paper is silent, and what cannot be reproduced.

Offline: the seed runs come from the packaged replay suite (baselines/paper-qwen2vl-2b/runs.csv);
the heuristic rows' recorded scores (Table 2, rows 12-31) are transcribed below. `--table` reads
the full transcribed table instead and checks it against both.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from strategies.paper_heuristics import alpha_weights, coli_details, coli_weights, norm_weights
from strategies.quadratic import fit_best_of_splits, quadratic_features, r2_score

DATASETS = ["COCO", "LISA", "GeoQAV", "SAT", "ScienceQA"]
SEED_RUNS = Path(__file__).resolve().parents[2] / "baselines" / "paper-qwen2vl-2b" / "runs.csv"
HEURISTICS = ["Ain", "Aout", "Abal", "Coli", "Norm"]
ALPHA = {"Ain": 1.0, "Aout": 0.0, "Abal": 0.5}
ALPHA_SINGLE = 0.5  # the strategies' default (strategies/alpha.py explains the choice)

# Table 2 (arXiv 2505.24871 v2, appendix), rows 12-31: group, subgroup, name -> recorded scores
# (LISA, SAT, ScienceQA, In_Score, Out_Score). Transcribed in shared/data/modomodo-paper.
RECORDED = {
    ("Heuristic", "Step-averaged", "Ain"): (0.4687, 0.5928, 0.7476, 0.5779, 0.5008),
    ("Heuristic", "Step-averaged", "Aout"): (0.4616, 0.5788, 0.7179, 0.5628, 0.4772),
    ("Heuristic", "Step-averaged", "Abal"): (0.4755, 0.5892, 0.7338, 0.5763, 0.5061),
    ("Heuristic", "Step-averaged", "Coli"): (0.4494, 0.5773, 0.7055, 0.5533, 0.4825),
    ("Heuristic", "Step-averaged", "Norm"): (0.4573, 0.5664, 0.7050, 0.5540, 0.5100),
    ("Heuristic", "2000-step", "Ain"): (0.4415, 0.5939, 0.7581, 0.5685, 0.4867),
    ("Heuristic", "2000-step", "Aout"): (0.4075, 0.5799, 0.7100, 0.5359, 0.4726),
    ("Heuristic", "2000-step", "Abal"): (0.4676, 0.5877, 0.7382, 0.5735, 0.5011),
    ("Heuristic", "2000-step", "Coli"): (0.4678, 0.5783, 0.6083, 0.5354, 0.4471),
    ("Heuristic", "2000-step", "Norm"): (0.4732, 0.5762, 0.7372, 0.5728, 0.5133),
    ("Heuristic(No1)", "Step-averaged", "Ain"): (0.4498, 0.4020, 0.7129, 0.5095, 0.4970),
    ("Heuristic(No1)", "Step-averaged", "Aout"): (0.0873, 0.5856, 0.7015, 0.3869, 0.4635),
    ("Heuristic(No1)", "Step-averaged", "Abal"): (0.4666, 0.5892, 0.7447, 0.5752, 0.5088),
    ("Heuristic(No1)", "Step-averaged", "Coli"): (0.4480, 0.5923, 0.7040, 0.5562, 0.4674),
    ("Heuristic(No1)", "Step-averaged", "Norm"): (0.4662, 0.5794, 0.7110, 0.5632, 0.4829),
    ("Heuristic(No1)", "2000-step", "Ain"): (0.4257, 0.4414, 0.7204, 0.5108, 0.4499),
    ("Heuristic(No1)", "2000-step", "Aout"): (0.0556, 0.5731, 0.6896, 0.3657, 0.4739),
    ("Heuristic(No1)", "2000-step", "Abal"): (0.4637, 0.5529, 0.7248, 0.5589, 0.4674),
    ("Heuristic(No1)", "2000-step", "Coli"): (0.4815, 0.5897, 0.7105, 0.5728, 0.4812),
    ("Heuristic(No1)", "2000-step", "Norm"): (0.4065, 0.5892, 0.7169, 0.5398, 0.5031),
}
MODEL_BASED_OUT = [0.4962, 0.5067, 0.4856, 0.4876, 0.4823, 0.4989, 0.5048, 0.4883, 0.5082, 0.5104]

ASSUMPTIONS = [
    "The seed runs are Table 2's 11 Seed rows (final, 2000-step metrics); the heuristics are fed those, so the "
    "recomputed mixtures correspond to the '2000-step' Heuristic rows. The 'Step-averaged' rows need per-step "
    "pilot metrics the paper does not publish: not reproducible.",
    "alpha_single (the factor on single-dataset runs in Ain/Aout/Abal) is not given. The recorded 2000-step Aout "
    "row scores 0.71 on ScienceQA, which only runs that train on ScienceQA reach; Aout gives ScienceQA zero "
    "weight for alpha_single >= 0.675, so the record rules those values out. We use 0.5 (the middle of the "
    "consistent range, and the strategies' default) and also show 0 and 1.",
    "'Include dataset i' means w_i > 0. Coli regresses the Out-Score on 0/1 inclusion indicators without "
    "intercept (lambda = 1e-3) and divides each coefficient by diag((X'X + lambda I)^-1), as stated.",
    "Norm's raw weight is 0.2 - 0.1 * (min-max normalised Out-Score of the run excluding i), as stated.",
    "'Heuristic(No1)' is not defined in the data we have. Its in-domain scores (Aout(No1): LISA IoU 0.06-0.09, "
    "the level of runs with neither COCO nor LISA) suggest 'dataset 1 (COCO) removed', but this is a guess: the "
    "No1 rows are shown, not recomputed.",
    "The quadratic surrogate is the paper's: OLS (minimum-norm) on [1, w, w (x) w], model chosen by the best "
    "held-out R^2 over 5 random 80/20 splits (numpy seed 0); fitted on the 11 seed runs plus the 5 recomputed "
    "2000-step heuristic mixtures with their recorded Out-Scores (16 points, 31 features: underdetermined, as "
    "in the paper). Candidates: 10,000 draws from a Gaussian fitted to those 16 mixtures, negatives set to 0, "
    "renormalised, ranked by prediction; top-10 distinct.",
    "R^2 is in-sample on all 16 points for the selected coefficients; the leave-one-out error refits the "
    "minimum-norm OLS without each point (the split selection is not repeated inside LOO).",
    "The paper's 10 model-based mixtures are not published, so the proposals cannot be compared weight by "
    "weight; their recorded Out-Scores (0.4823 to 0.5104) are shown for scale.",
]


def load_seed_runs(table: str | Path | None = None) -> pd.DataFrame:
    """The 11 seed rows: weight columns w_<dataset>, In_Score, Out_Score (and the per-benchmark scores)."""
    if table is not None:
        raw = _read_table(table)
        seeds = raw[raw["group"] == "Seed"].reset_index(drop=True)
        for i, r in raw[raw["group"].isin(["Heuristic", "Heuristic(No1)"])].iterrows():
            rec = RECORDED.get((r["group"], r["subgroup"], r["name"]))
            if rec is None:
                valid = sorted({k[2] for k in RECORDED})
                raise ValueError(
                    f"{table}: line {i + 2}: heuristic row ({r['group']}, {r['subgroup']}, {r['name']}) "
                    f"is not in the paper's Table 2; valid subgroups: 2000-step, Step-averaged; names: "
                    f"{', '.join(valid)}"
                )
            got = (r["LISA"], r["SAT"], r["ScienceQA"], r["In_Score"], r["Out_Score"])
            if not np.allclose(rec, got, atol=5e-5):
                raise ValueError(
                    f"{table}: row {r['name']} ({r['group']}, {r['subgroup']}) differs from the "
                    f"transcription: {got} vs {rec}"
                )
        return seeds
    runs = pd.read_csv(SEED_RUNS)
    # The suite also holds rows whose weights were recomputed from the seed runs (the 2000-step
    # Coli and Norm heuristics); the seed designs are the rows uniform over their support.
    W = runs[[f"w_{d}" for d in DATASETS]].to_numpy(float)
    is_design = [np.ptp(w[w > 0]) < 1e-12 for w in W]
    seeds = runs[is_design].reset_index(drop=True)
    if len(seeds) != 11:
        raise ValueError(f"{SEED_RUNS} holds {len(seeds)} seed-design rows, expected 11")
    return seeds


TABLE_TEXT = ["group", "subgroup", "name"]
TABLE_NUMBERS = [f"w_{d}" for d in DATASETS] + ["LISA", "SAT", "ScienceQA", "In_Score", "Out_Score"]


def _read_table(table: str | Path) -> pd.DataFrame:
    """The transcribed Table 2, checked: the columns the computation reads exist, every number in
    them is a number on the rows that use it (weights: seed rows; scores: seed and heuristic rows) (naming the file, column and line), 11 seed rows."""
    from harness.mixture import did_you_mean

    try:
        raw = pd.read_csv(table, dtype={c: str for c in TABLE_TEXT}, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        raise ValueError(
            f"{table}: the file is empty; expected the transcribed Table 2 (shared/data/modomodo-paper/table2_runs.csv)"
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ValueError(f"{table}: not a readable CSV ({str(e).strip().splitlines()[-1]})") from None
    for c in TABLE_TEXT + TABLE_NUMBERS:
        if c not in raw.columns:
            raise ValueError(
                f"{table}: column {c!r} is missing; {did_you_mean(c, list(raw.columns))} (the "
                f"table needs {', '.join(TABLE_TEXT + TABLE_NUMBERS)})"
            )
    seed = (raw["group"] == "Seed").to_numpy()
    scored = raw["group"].isin(["Seed", "Heuristic", "Heuristic(No1)"]).to_numpy()
    for c in TABLE_NUMBERS:
        values = pd.to_numeric(raw[c], errors="coerce")
        bad = (seed if c.startswith("w_") else scored) & values.isna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            got = raw[c].iloc[i]
            what = "is missing" if pd.isna(got) else f"{got!r} is not a number"
            raise ValueError(f"{table}: column {c!r}, line {i + 2} (row {raw['name'].iloc[i]!r}): value {what}")
        raw[c] = values
    n_seed = int((raw["group"] == "Seed").sum())
    if n_seed != 11:
        raise ValueError(
            f"{table}: {n_seed} rows have group 'Seed'; the paper's table has 11 (5 single, "
            f"5 leave-one-out, uniform); groups found: {', '.join(sorted(set(raw['group'].dropna())))}"
        )
    return raw


def consistency(weights: dict[str, float], recorded: tuple) -> dict[str, bool]:
    """Does a recomputed mixture fit the recorded row's in-domain scores? Two signatures from the seed
    runs: ScienceQA accuracy is >= 0.70 whenever ScienceQA is trained on and 0.43 when it is not; LISA
    IoU is >= 0.40 whenever COCO or LISA is trained on and <= 0.09 when neither is."""
    lisa, _, sqa = recorded[0], recorded[1], recorded[2]
    checks = {}
    checks["ScienceQA"] = (weights["ScienceQA"] > 0) == (sqa >= 0.55)
    checks["COCO|LISA"] = (weights["COCO"] + weights["LISA"] > 0) == (lisa >= 0.2)
    return checks


def heuristic_mixtures(seeds: pd.DataFrame, alpha_single: float = 1.0) -> dict[str, dict[str, float]]:
    W = seeds[[f"w_{d}" for d in DATASETS]].to_numpy(float)
    ins, out = seeds["In_Score"].to_numpy(float), seeds["Out_Score"].to_numpy(float)
    res = {name: alpha_weights(W, ins, out, a, alpha_single) for name, a in ALPHA.items()}
    res["Coli"] = coli_weights(W, out)
    res["Norm"] = norm_weights(W, out)
    return {k: {d: round(float(w), 6) for d, w in zip(DATASETS, v)} for k, v in res.items()}


def refit_quadratic(
    seeds: pd.DataFrame, mixtures: dict[str, dict[str, float]], n_candidates: int = 10_000, top: int = 10, seed: int = 0
) -> dict:
    W_seed = seeds[[f"w_{d}" for d in DATASETS]].to_numpy(float)
    X = np.vstack([W_seed] + [np.array([mixtures[h][d] for d in DATASETS]) for h in HEURISTICS])
    y = np.concatenate(
        [seeds["Out_Score"].to_numpy(float), [RECORDED[("Heuristic", "2000-step", h)][4] for h in HEURISTICS]]
    )
    rng = np.random.default_rng(seed)
    coef = fit_best_of_splits(X, y, rng, 5, 0.2)
    F = quadratic_features(X)
    pred = F @ coef
    loo = np.empty(len(y))
    for i in range(len(y)):
        m = np.arange(len(y)) != i
        loo[i] = F[i] @ np.linalg.lstsq(F[m], y[m], rcond=None)[0] - y[i]
    cands = rng.multivariate_normal(X.mean(0), np.cov(X, rowvar=False), size=n_candidates, method="svd")
    cands = np.clip(cands, 0.0, None)
    cands = cands[cands.sum(1) > 1e-9]
    cands = cands / cands.sum(1, keepdims=True)
    p = quadratic_features(cands) @ coef
    proposals, seen = [], set()
    for i in np.argsort(-p, kind="stable"):
        key = tuple(np.round(cands[i], 4))
        if key in seen:
            continue
        seen.add(key)
        proposals.append(
            {
                "mixture": {d: round(float(w), 4) for d, w in zip(DATASETS, cands[i])},
                "predicted_out_score": round(float(p[i]), 4),
            }
        )
        if len(proposals) >= top:
            break
    # A regularised reference (not the paper's method): the replay suite's Scheffé ridge, alpha by LOO.
    from harness.suites.surrogate import Surrogate, fit_report

    ridge = Surrogate.fit(X, y[:, None], ["Out_Score"])
    rp = ridge.predict(cands)[:, 0]
    ridge_props = []
    for i in np.argsort(-rp, kind="stable")[:top]:
        ridge_props.append(
            {
                "mixture": {d: round(float(w), 4) for d, w in zip(DATASETS, cands[i])},
                "predicted_out_score": round(float(rp[i]), 4),
            }
        )
    full = np.linalg.lstsq(F, y, rcond=None)[0]
    return {
        "points": int(len(y)),
        "features": int(F.shape[1]),
        "r2_selected_model_all_points": round(r2_score(y, pred), 4),
        "r2_min_norm_ols_all_points": round(r2_score(y, F @ full), 4),
        "loo_rmse": round(float(np.sqrt(np.mean(loo**2))), 4),
        "loo_mae": round(float(np.mean(np.abs(loo))), 4),
        "loo_r2": round(1 - float(np.sum(loo**2)) / float(np.sum((y - y.mean()) ** 2)), 4),
        "out_score_sd": round(float(np.std(y)), 4),
        "proposals": proposals,
        "model_based_recorded_out_scores": MODEL_BASED_OUT,
        "ridge_reference": {"fit": fit_report(X, y[:, None], ["Out_Score"])["Out_Score"], "proposals": ridge_props},
    }


def reproduce(table: str | Path | None = None) -> dict:
    seeds = load_seed_runs(table)
    mixtures = heuristic_mixtures(seeds, ALPHA_SINGLE)
    alt = {str(a): {h: m[h] for h in ALPHA} for a in (0.0, 1.0) for m in [heuristic_mixtures(seeds, a)]}
    W = seeds[[f"w_{d}" for d in DATASETS]].to_numpy(float)
    rows = {}
    for h in HEURISTICS:
        rows[h] = {
            "recorded_2000_step": dict(
                zip(["LISA", "SAT", "ScienceQA", "In_Score", "Out_Score"], RECORDED[("Heuristic", "2000-step", h)])
            ),
            "recorded_step_averaged": dict(
                zip(["LISA", "SAT", "ScienceQA", "In_Score", "Out_Score"], RECORDED[("Heuristic", "Step-averaged", h)])
            ),
            "consistency": consistency(mixtures[h], RECORDED[("Heuristic", "2000-step", h)]),
        }
    sweep = {}
    for a in (0.0, 0.25, 0.5, 0.6, 0.65, 0.7, 0.75, 1.0):
        m = heuristic_mixtures(seeds, a)
        sweep[str(a)] = {h: all(consistency(m[h], RECORDED[("Heuristic", "2000-step", h)]).values()) for h in ALPHA}
    return {
        "source": "Liang et al., MoDoMoDo, arXiv 2505.24871 v2, Table 2 (seed rows 1-11, heuristic rows 12-31)",
        "heuristics": mixtures,
        "alpha_single": ALPHA_SINGLE,
        "heuristics_other_alpha_single": alt,
        "coli": {
            k: [round(v, 6) for v in vals] for k, vals in coli_details(W, seeds["Out_Score"].to_numpy(float)).items()
        },
        "recorded": rows,
        "alpha_single_consistency": sweep,
        "quadratic": refit_quadratic(seeds, mixtures),
        "not_reproducible": [
            "Step-averaged heuristic rows (per-step pilot metrics unpublished).",
            "Heuristic(No1) rows (the variant is not defined in the record).",
            "The paper's own heuristic and model-based weights (unpublished), hence alpha_single.",
            "Scores of the recomputed mixtures: that needs training (the GPU protocol) or, approximately, the "
            "replay suite's surrogate (modomodo run --suite paper-qwen2vl-2b --mixture ...).",
        ],
        "assumptions": ASSUMPTIONS,
    }


HEADLINE_BUDGET = 11  # Norm reads the 11 seed runs: its pilots are exactly the paper's seed designs


def headline(recomputed_norm: dict[str, float]) -> dict:
    """The comparison the README states (Norm's 2000-step run against uniform), obtained the way a user would:
    the `norm` strategy benched in replay on the paper suite (budget 11, its 11 seed runs), its recommendation
    scored by the suite's judge. Which number is which: the Norm mixture is recomputed (here and by the
    strategy, from the seed runs); both Out-Scores are replayed (the paper's recorded runs of those mixtures)."""
    import strategies
    from harness import suites
    from harness.runners import make_runner
    from harness.spec import Budget
    from harness.studies.study import Study

    judge = suites.load("paper-qwen2vl-2b").judge(None)
    out = Study(judge, strategies.get("norm"), Budget(HEADLINE_BUDGET), 0, make_runner("replay", judge)).run()
    if out.status != "ok":  # pragma: no cover - the shipped strategy on the shipped suite
        raise RuntimeError(f"norm failed on {judge.name}: {out.reason}")
    rec = out.recommended
    gap = max(abs(rec[d] - recomputed_norm[d]) for d in DATASETS)
    return {
        "suite": judge.name,
        "track": judge.track,
        "budget": HEADLINE_BUDGET,
        "metric": judge.metric,
        "norm_mixture": rec,
        "norm_matches_recomputed": bool(gap < 5e-4),
        "max_weight_gap": round(gap, 6),
        "norm_out_score": out.score,
        "norm_score_source": out.score_source,
        "uniform_out_score": judge.uniform_score,
        "gain_points": round(100 * (out.score - judge.uniform_score), 2),
        "paper_norm_out_score": RECORDED[("Heuristic", "2000-step", "Norm")][4],
    }


def _fmt_mix(m: dict[str, float]) -> str:
    return " ".join(f"{m[d]:.3f}" for d in DATASETS)


def to_markdown(r: dict) -> str:
    L = ["# MoDoMoDo's computations, reproduced", "", f"Source: {r['source']}.", ""]
    h = r.get("headline")
    if h:
        L += [
            "## The headline comparison",
            "",
            f"`norm` benched in replay on {h['suite']} ({h['track']} track, budget {h['budget']}: the 11 seed runs) "
            f"recommends {_fmt_mix(h['norm_mixture'])} ({', '.join(DATASETS)}): "
            + (
                "the Norm mixture recomputed below"
                if h["norm_matches_recomputed"]
                else f"NOT the Norm mixture recomputed below (max weight gap {h['max_weight_gap']})"
            )
            + ".",
            "",
            f"**Out-Score {h['norm_out_score']:.4f} (Norm) vs {h['uniform_out_score']:.4f} (uniform): "
            f"{h['gain_points']:+.2f} points** (the paper records {h['paper_norm_out_score']:.4f} for Norm).",
            "",
            "Recomputed here: the Norm mixture (from the 11 seed runs). Replayed, not recomputed: both Out-Scores, "
            f"the paper's recorded 2000-step runs of those mixtures (score source: {h['norm_score_source']}); "
            "recomputing a score needs training (the GPU protocol).",
            "",
        ]
    L += [
        f"## Heuristic mixtures recomputed from the 11 seed runs (alpha_single = {r['alpha_single']})",
        "",
        f"## Heuristic mixtures recomputed from the 11 seed runs (alpha_single = {r['alpha_single']})",
        "",
        "| heuristic | " + " | ".join(DATASETS) + " | recorded In (2000-step) | recorded Out (2000-step) "
        "| recorded Out (step-avg) | consistent with in-domain scores |",
        "|---|" + "---:|" * len(DATASETS) + "---:|---:|---:|---|",
    ]
    for h in HEURISTICS:
        m, rec = r["heuristics"][h], r["recorded"][h]
        cons = ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in rec["consistency"].items())
        L.append(
            f"| {h} | "
            + " | ".join(f"{m[d]:.4f}" for d in DATASETS)
            + f" | {rec['recorded_2000_step']['In_Score']:.4f} | {rec['recorded_2000_step']['Out_Score']:.4f}"
            f" | {rec['recorded_step_averaged']['Out_Score']:.4f} | {cons} |"
        )
    for a, ms in r["heuristics_other_alpha_single"].items():
        L += ["", f"With alpha_single = {a}:", ""]
        for h, m in ms.items():
            L.append(f"- {h}: " + ", ".join(f"{d} {m[d]:.4f}" for d in DATASETS))
    L += [
        "",
        "Which alpha_single values give Ain/Aout/Abal mixtures consistent with the recorded in-domain scores "
        "(a dataset with zero weight shows in them):",
        "",
    ]
    for a, ok in r["alpha_single_consistency"].items():
        L.append(f"- alpha_single = {a}: " + ", ".join(f"{h} {'yes' if v else 'no'}" for h, v in ok.items()))
    c = r["coli"]
    L += [
        "",
        "Coli internals: beta = "
        + ", ".join(f"{v:.4f}" for v in c["beta"])
        + "; diag((X'X+lambda I)^-1) = "
        + ", ".join(f"{v:.4f}" for v in c["diag_inv"]),
        "",
    ]
    q = r["quadratic"]
    L += [
        "## Quadratic surrogate (Algorithm 4) refitted on seeds + recomputed heuristics",
        "",
        f"{q['points']} points, {q['features']} features. R² on all points: {q['r2_selected_model_all_points']} "
        f"for the model the best-of-5-splits rule selects (fitted on 80%), {q['r2_min_norm_ols_all_points']} for "
        f"minimum-norm OLS on all points (the 31 features span only 15 dimensions on the simplex). Leave-one-out RMSE {q['loo_rmse']} (MAE "
        f"{q['loo_mae']}, LOO R² {q['loo_r2']}) against an Out-Score sd of {q['out_score_sd']}: with 31 "
        "features and 16 points, unregularised OLS does not generalise, and its proposals sit where it "
        "extrapolates.",
        "",
        "Top-10 proposed mixtures:",
        "",
        "| # | " + " | ".join(DATASETS) + " | predicted Out-Score |",
        "|---|" + "---:|" * (len(DATASETS) + 1),
    ]
    for i, p in enumerate(q["proposals"], 1):
        L.append(
            f"| {i} | "
            + " | ".join(f"{p['mixture'][d]:.4f}" for d in DATASETS)
            + f" | {p['predicted_out_score']:.4f} |"
        )
    rr = q["ridge_reference"]
    L += [
        "",
        "Reference, not the paper's method: the same points under the replay suite's regularised model "
        f"(Scheffé quadratic, ridge with alpha by leave-one-out): LOO RMSE {rr['fit']['loo_rmse']}, LOO R² "
        f"{rr['fit']['loo_r2']}. Its top-10:",
        "",
        "| # | " + " | ".join(DATASETS) + " | predicted Out-Score |",
        "|---|" + "---:|" * (len(DATASETS) + 1),
    ]
    for i, p in enumerate(rr["proposals"], 1):
        L.append(
            f"| {i} | "
            + " | ".join(f"{p['mixture'][d]:.4f}" for d in DATASETS)
            + f" | {p['predicted_out_score']:.4f} |"
        )
    L += [
        "",
        "The paper's 10 model-based runs recorded Out-Scores "
        + ", ".join(f"{v:.4f}" for v in q["model_based_recorded_out_scores"])
        + ".",
        "",
        "## Not reproducible",
        "",
    ] + [f"- {x}" for x in r["not_reproducible"]]
    L += ["", "## Assumptions", ""] + [f"- {x}" for x in r["assumptions"]]
    return "\n".join(L) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="modomodo reproduce paper", description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    ap.add_argument("--out", default=None, help="also write the markdown report here")
    ap.add_argument("--table", default=None, help="the full transcribed Table 2 CSV (checked against the record)")
    a = ap.parse_args(argv)
    report = reproduce(a.table)
    report["headline"] = headline(report["heuristics"]["Norm"])
    md = to_markdown(report)
    if a.out:
        Path(a.out).write_text(md)
    sys.stdout.write(json.dumps(report, indent=2) + "\n" if a.json else md)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
