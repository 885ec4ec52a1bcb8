"""Pool-track regret of single- against multi-fidelity strategies at equal cost (issue 16):

    python -m tests.benchmarks.fidelity_report [--seeds 50] [--budgets 4,8,16] [--mixtures 96] [--train-seeds 8]
                                               [--cost-model measured|fraction]

On tables from tests/benchmarks/fidelity_table.py (exported through export_suite, loaded as a suite),
for settings of the true rank correlation between fidelities (weak, the default realistic one, strong)
and of the seed noise (SNR of the 8-seed mean near 3, as measured on the real MiniModo suites, or near 6): mean normalised regret [95% bootstrap CI over study seeds] of random, gp-bo and the
multi-fidelity strategies at budgets in run-equivalents, with the mean run-equivalents each spent
and the mean number of pilots. Prints markdown; every figure is measured in this run.

Pilots are priced by a cost model on each table's card (harness.spec.CostModel): `measured` (default) is
minimodo-pool's, measured from its 768 stored runs (training seconds per run, seconds per checkpoint
evaluation: a new run to 0.25 costs about 0.385 run-equivalents, not 0.25); `fraction` is the old rule.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

STRATEGIES = ["random", "gp-bo", "successive-halving", "hyperband", "bohb-gp"]
# label -> (true correlation of per-mixture effects with full fidelity, seed-noise sd); the between-mixture sd
# is 0.02, so seed sd 0.02 gives an SNR of the 8-seed mean near 2.7 (ANOVA estimate; minimodo-tiny-p: 2.63 at 20 seeds),
# 0.01 near 6
SETTINGS = {
    "weak": ({0.25: 0.3, 0.5: 0.5}, 0.02),
    "realistic": ({0.25: 0.6, 0.5: 0.85}, 0.02),
    "strong": ({0.25: 0.9, 0.5: 0.97}, 0.02),
    "realistic, low noise": ({0.25: 0.6, 0.5: 0.85}, 0.01),
    "strong, low noise": ({0.25: 0.9, 0.5: 0.97}, 0.01),
}


def _ci(values, key) -> str:
    from leaderboard.stats import bootstrap_ci

    m, lo, hi = bootstrap_ci(np.asarray(values, float), *key)
    return "n/a" if not math.isfinite(m) else f"{m:.3f} [{lo:.3f}, {hi:.3f}]"


def cost_model_block(kind: str) -> dict | None:
    """The `cost_model` the tables' cards get: minimodo-pool's measured one, or None (the fraction rule)."""
    if kind == "fraction":
        return None
    from harness import suites

    return yaml.safe_load((suites.registered()["minimodo-pool"] / "card.yaml").read_text())["cost_model"]


def report(seeds: int, budgets, n_mix: int, train_seeds: int, settings=SETTINGS, cost_model: str = "measured") -> str:
    import strategies
    from harness import suites
    from harness.runners import make_runner
    from harness.spec import Budget
    from harness.studies.study import Study
    from tests.benchmarks.fidelity_table import make_fidelity_suite

    cm = cost_model_block(cost_model)
    lines = [
        f"Cost model: {cost_model}"
        + (
            f" (training {cm['train_seconds']} s, one evaluation {cm['eval_seconds']} s "
            f"per checkpoint: {cm['source'].split('(')[0].strip()})"
            if cm
            else " (a pilot at f costs f)"
        ),
        "",
    ]
    tmp = Path(tempfile.mkdtemp(prefix="fidelity-report-"))
    for label, (rho, seed_sd) in settings.items():
        slug = label.replace(",", "").replace(" ", "-")
        folder = make_fidelity_suite(
            tmp / slug, n_mix=n_mix, seeds=train_seeds, rho=rho, seed_sd=seed_sd, name=f"fid-{slug}"
        )
        card = yaml.safe_load((folder / "card.yaml").read_text())
        priced = cost_model_block(cost_model)
        card.pop("cost_model", None)
        if priced:
            card["cost_model"] = priced
        (folder / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False, allow_unicode=True))
        judge = suites.load(folder).judge("pool")
        fb = card["fidelities"]
        corr = {f: fb["rank_correlation"][f][judge.metric]["spearman_with_full"] for f in fb["rank_correlation"]}
        snr = {f: fb["signal"][f][judge.metric]["snr_mean"] for f in fb["signal"]}
        lines += [
            f"### {label}: true effect correlation {rho}, seed sd {seed_sd}; measured Spearman of per-mixture means with full "
            f"fidelity {corr}; SNR of per-mixture means {snr} ({n_mix} mixtures × {train_seeds} seeds)",
            "",
            "| strategy | "
            + " | ".join(f"budget {b}: norm. regret [95% CI]" for b in budgets)
            + " | "
            + " | ".join(f"spent / pilots @{b}" for b in budgets)
            + " |",
            "|---|" + "---|" * (2 * len(budgets)),
        ]
        runner = make_runner("replay", judge)
        for name in STRATEGIES:
            cls = strategies.get(name)
            cells, costs = [], []
            for b in budgets:
                outs = [Study(judge, cls, Budget(b), s, runner).run() for s in range(seeds)]
                bad = [o for o in outs if o.status != "ok"]
                if bad:
                    raise RuntimeError(f"{name} budget {b}: {bad[0].reason}")
                cells.append(_ci([o.normalized_regret for o in outs], ("fid", label, name, b)))
                costs.append(f"{np.mean([o.cost_used for o in outs]):.2f} / {np.mean([o.runs_used for o in outs]):.1f}")
            lines.append(f"| {name} | " + " | ".join(cells) + " | " + " | ".join(costs) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--budgets", default="4,8,16")
    ap.add_argument("--mixtures", type=int, default=96)
    ap.add_argument("--train-seeds", type=int, default=8)
    ap.add_argument("--cost-model", choices=("measured", "fraction"), default="measured")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    print(
        report(
            a.seeds,
            [float(b) if "." in b else int(b) for b in a.budgets.split(",")],
            a.mixtures,
            a.train_seeds,
            cost_model=a.cost_model,
        )
    )
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
