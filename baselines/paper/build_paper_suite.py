"""Rebuild baselines/paper-qwen2vl-2b from the paper's transcribed Table 2.

    python baselines/paper/build_paper_suite.py [PATH/TO/table2_runs.csv]

Only the 11 seed runs carry published mixture weights. Two more rows are added with weights
*recomputed* from those seed runs: the 2000-step Coli and Norm heuristics (Algorithms 2 and 3) are
fully specified by the paper and fed only the seed runs' final scores, so their mixtures follow
exactly; their recorded scores are the paper's (Table 2, rows 20 and 21). They are listed on the card
under `recomputed_rows`. The other heuristic and model-based rows cannot be placed (unstated
α_single, unpublished step-averaged pilot metrics, unpublished model-based weights). Every other
mixture is answered by the surrogate, labelled as such, with its leave-one-out error on the card.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pandas as pd

from harness.factory.importer import import_table
from strategies.paper_heuristics import coli_weights, norm_weights

HERE = Path(__file__).resolve().parent
DEFAULT_TABLE = HERE.parents[2] / "shared" / "data" / "modomodo-paper" / "table2_runs.csv"
OUT = HERE.parent / "paper-qwen2vl-2b"
DATASETS = ["COCO", "LISA", "GeoQAV", "SAT", "ScienceQA"]
SCORES = ["LISA", "SAT", "ScienceQA", "ChartQA", "InfoVQA", "MathVista", "MMMU", "In_Score", "Out_Score"]


def build(table_path: Path = DEFAULT_TABLE, out: Path = OUT) -> Path:
    raw = pd.read_csv(table_path)
    seed_rows = raw[raw["group"] == "Seed"].reset_index(drop=True)
    W = seed_rows[[f"w_{d}" for d in DATASETS]].to_numpy(float)
    seed_out = seed_rows["Out_Score"].to_numpy(float)
    recomputed, extra_rows = [], []
    for name, weights in (("Coli", coli_weights(W, seed_out)), ("Norm", norm_weights(W, seed_out))):
        row = raw[(raw["group"] == "Heuristic") & (raw["subgroup"] == "2000-step") & (raw["name"] == name)].iloc[0]
        rec = row.copy()
        for d, w in zip(DATASETS, weights):
            rec[f"w_{d}"] = float(w)
        extra_rows.append(rec)
        recomputed.append(
            {
                "table2_row": int(row["row"]),
                "name": f"Heuristic 2000-step {name}",
                "weights": {d: round(float(w), 6) for d, w in zip(DATASETS, weights)},
                "Out_Score": float(row["Out_Score"]),
                "how": f"strategies/paper_heuristics.py {name.lower()}_weights on the 11 seed runs",
            }
        )
    rows = pd.concat([seed_rows, pd.DataFrame(extra_rows)], ignore_index=True)
    # Weight columns keep the paper's w_ prefix in the table; dataset names drop it.
    table = rows[[f"w_{d}" for d in DATASETS] + SCORES]
    extra = {
        "version": "2",
        "description": (
            "The MoDoMoDo paper's recorded runs of Qwen2-VL-2B-Instruct (GRPO, 2000 steps) whose "
            "mixtures are known: the 11 seed designs and the 2000-step Coli and Norm heuristics "
            "(weights recomputed). Pool track only: 13 candidates, one seed each. What it can show: the "
            "paper's heuristics recomputed and replayed on the paper's own numbers. What it cannot: "
            "rank strategies (one seed per mixture, no noise model; its surrogate fails the fidelity "
            "gate; its best recorded mixture is a seed design, so seed, linear and quadratic reach 0 "
            "regret by construction)."
        ),
        "what_it_shows": (
            "the paper's heuristics (Algorithms 1 to 3) and surrogate (Algorithm 4) recomputed from the "
            "11 recorded seed runs and replayed: `modomodo reproduce paper`, and the pool track for the "
            "mixtures the paper ran"
        ),
        "what_it_cannot_show": (
            "a ranking of strategies: one training seed per mixture (no noise model), a surrogate "
            "that fails the fidelity gate, and a best recorded mixture that is one of the seed "
            "designs, so `seed`, `linear` and `quadratic` reach 0 regret by construction"
        ),
        "recomputed_rows": recomputed,
        "reconstructed_weights": (
            "The paper publishes the scores of its heuristic runs (Table 2, rows 20 and 21) but not their weights. The "
            "weights of this suite's Coli and Norm rows are reconstructed by strategies/paper_heuristics.py, the same "
            "functions the `coli` and `norm` strategies run, so 'norm recovers the paper's headline run' holds by "
            "construction and is no evidence that the implementation is right. The independent check of those "
            "functions is the by-hand formula tests in tests/test_strategies_paper.py (test_norm_by_hand, "
            "test_coli_by_hand, test_alpha_by_hand)."
        ),
        "citation": (
            "Liang, Y. et al. MoDoMoDo: Multi-Domain Data Mixtures for Multimodal LLM Reinforcement "
            "Learning. arXiv:2505.24871 (v2, 2025), Table 2 (appendix)."
        ),
        "protocol": {
            "base_model": "Qwen2-VL-2B-Instruct",
            "algorithm": "GRPO",
            "steps": 2000,
            "generations": 6,
            "lr": 1e-6,
            "kl_beta": 0.04,
            "reward": "2*(accuracy or IoU) + 1*format",
            "in_score": "(3397*LISA + 1928*SAT + 2017*ScienceQA) / 7342",
            "out_score": "(2500*ChartQA + 2801*InfoVQA + 1000*MathVista + 900*MMMU) / 7201",
        },
        "cost": {"gpu_hours_per_run": None, "note": "the paper does not report run time"},
        "seeds_note": "one training seed per mixture: the table carries no run-to-run noise estimate",
        "provenance": {
            "source": (
                "shared/data/modomodo-paper/table2_runs.csv (transcribed from the paper): group == Seed, "
                "plus rows 20 and 21 with recomputed weights"
            ),
            "source_sha256": hashlib.sha256(Path(table_path).read_bytes()).hexdigest()[:16],
            "builder": "baselines/paper/build_paper_suite.py",
        },
    }
    return import_table(
        table,
        "paper-qwen2vl-2b",
        {d: f"w_{d}" for d in DATASETS},
        "Out_Score",
        "max",
        out,
        scores=SCORES,
        card_extra=extra,
        overwrite=True,
    )


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_TABLE))
