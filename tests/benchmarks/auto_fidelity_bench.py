"""`auto_report --fidelity`: pool-track regret with the fidelity axis and a cost budget (issue 26, round 5).

Every study is played by the real study loop (harness.studies.study.Study) against the judge's pool-track replay
(harness/suites/replay.py), as `modomodo bench` plays it: the budget is in run-equivalents, each pilot is
charged what the suite's cost model says (harness.spec.pilot_cost: a checkpoint continues its run, a smaller
scale is a separate run), a pilot returns one recorded seed at its fidelity, and the recommendation is scored
by the candidate's mean over its recorded full-fidelity seeds. Each budget is its own study (strategies that
size their plan to the budget, as the multi-fidelity ones and auto do, would differ if scored mid-way).

Tables: minimodo-pool (checkpoints 0.25 / 0.5 of a run, its measured `checkpoints` cost model), regmix-1m-to-60m
(a 1M-parameter scale at 1/60 of a 60M run), and `planted-rho<r>` suites built by tests/benchmarks/
fidelity_table.py (96 mixtures × 8 seeds, exported and loaded as any suite) whose cheap levels' true
per-mixture effects correlate `r` with the full run's, priced as separate scales (0.25 at 0.1, 0.5 at 0.2
run-equivalents), so the cheap level pays when r is high and does not when it is low.
Strategies: random, auto, auto-full (auto with `fidelities=False`), successive-halving, hyperband, bohb-gp.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import yaml

#: label -> (registered strategy, its parameters)
FIDELITY_STRATEGIES = {
    "random": ("random", {}),
    "auto": ("auto", {}),
    "auto-full": ("auto", {"fidelities": False}),
    "auto-pay2": ("auto", {"pay_ratio": 2.0}),  # variants tried (the report's section on them)
    "auto-screen-half": ("auto", {"screen_share": 0.5}),
    "auto-pairs8": ("auto", {"calibration_pairs": 8}),
    "successive-halving": ("successive-halving", {}),
    "hyperband": ("hyperband", {}),
    "bohb-gp": ("bohb-gp", {}),
}
PLANTED_COST = {0.25: 0.1, 0.5: 0.2, 1.0: 1.0}


def planted_suite(folder: Path, rho: float, seed_sd: float = 0.01) -> Path:
    """A 96 × 8 multi-fidelity suite whose cheap levels correlate `rho` with full fidelity, priced as scales."""
    from tests.benchmarks.fidelity_table import make_fidelity_suite

    name = f"planted-rho{rho:g}"
    path = make_fidelity_suite(folder, n_mix=96, seeds=8, rho={0.25: rho, 0.5: rho}, seed_sd=seed_sd, name=name)
    card = yaml.safe_load((path / "card.yaml").read_text())
    card["cost_model"] = {"kind": "scales", "cost": dict(PLANTED_COST), "source": "planted for the benchmark"}
    (path / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False, allow_unicode=True))
    return path


def full_means(judge) -> tuple[dict, float]:
    """(per-mixture mean of the recorded full-fidelity metric, oriented so higher is better; the sign)."""
    j = judge.score_columns.index(judge.metric)
    sign = 1.0 if judge.goal == "max" else -1.0
    return {m: sign * float(np.asarray(v)[:, j].mean()) for m, v in judge.recorded.items()}, sign


def play_fidelity_table(source, label: str, strategies: list[str], budgets: list[int], seeds: int) -> list[str]:
    """Markdown rows: per strategy, bmm regret [ratio to random, 95% paired CI] at each budget, then the mean
    run-equivalents spent, pilots and share of cheap pilots at the largest budget."""
    import strategies as registry
    from harness import suites
    from harness.runners import make_runner
    from harness.spec import Budget
    from harness.studies.study import Study

    judge = suites.load(source).judge("pool")
    runner = make_runner("replay", judge)
    means, sign = full_means(judge)
    vals = np.array(list(means.values()))
    best, med = vals.max(), np.median(vals)
    res: dict[str, dict[int, np.ndarray]] = {}
    spend: dict[str, tuple[float, float, float]] = {}
    rows: list[str] = []
    for s in strategies:
        name, params = FIDELITY_STRATEGIES[s]
        cls = registry.get(name)
        res[s] = {}
        for b in budgets:
            outs = [
                Study(judge, cls, Budget(b), seed, runner, strategy_params=params, isolation="none").run()
                for seed in range(seeds)
            ]
            bad = [o for o in outs if o.status != "ok"]
            if bad:
                raise RuntimeError(f"{s} on {label} at {b}: {bad[0].reason}")
            over = [o.cost_used for o in outs if o.cost_used > b + 1e-9]
            if over:
                raise RuntimeError(f"{s} on {label} at {b} overspent: {over[0]}")
            res[s][b] = np.array([(best - sign * o.score) / (best - med) for o in outs])
            if b == max(budgets):
                cheap = [np.mean([e["fidelity"] < 1.0 for e in o.trajectory]) if o.trajectory else 0 for o in outs]
                spend[s] = (np.mean([o.cost_used for o in outs]), np.mean([o.runs_used for o in outs]), np.mean(cheap))
        rows.append(_row(label, s, res, budgets, spend[s]))
        print(rows[-1], flush=True)  # as it goes: a long run leaves what it finished
    return rows


def _row(label, s, res, budgets, spent) -> str:
    """One strategy's markdown row: bmm regret [ratio to random, paired 95% CI] per budget; spent / pilots / cheap."""
    from tests.benchmarks.auto_report import paired_ratio

    cells = []
    for b in budgets:
        r, rnd = res[s][b], res["random"][b]
        if rnd.mean() <= 1e-12:
            cells.append(f"{r.mean():.3f} [random 0]")
            continue
        ratio, lo, hi = paired_ratio(r, rnd)
        cells.append(f"{r.mean():.3f} [{ratio:.2f}, {lo:.2f}-{hi:.2f}]")
    c, n, sh = spent
    return f"| {label} | {s} | " + " | ".join(cells) + f" | {c:.2f} / {n:.0f} / {sh:.0%} |"


def fidelity_report(strategies: list[str], budgets: list[int], seeds: int, only: str = "", rhos=(0.9, 0.3)) -> str:
    header = [
        "| table | strategy | "
        + " | ".join(f"budget {b}: bmm regret [ratio to random, 95% CI]" for b in budgets)
        + f" | at {max(budgets)}: spent / pilots / cheap share |",
        "|---|---|" + "---|" * len(budgets) + "---|",
    ]
    lines = list(header)
    tmp = Path(tempfile.mkdtemp(prefix="auto-fidelity-"))
    sources = [("minimodo-pool", "minimodo-pool"), ("regmix-1m-to-60m", "regmix-1m-to-60m")]
    sources += [(f"planted-rho{r:g}", None) for r in rhos]
    for label, src in sources:
        if only and not any(t in label for t in only.split(",")):
            continue
        if src is None:
            src = planted_suite(tmp, float(label.removeprefix("planted-rho")))
        lines += play_fidelity_table(src, label, strategies, budgets, seeds)
    return "\n".join(lines)


def fidelity_proposal_cpu_ms(source: str = "regmix-1m-to-60m", budget: int = 24, seeds: int = 3) -> str:
    """CPU ms per auto proposal (this process's `time.process_time`) in pool-track studies of `source` with its
    cheap level: mean, 95th percentile and worst single proposal, over `seeds` studies after a warm-up one."""
    import time

    from harness import suites
    from harness.runners import make_runner
    from harness.spec import Budget
    from harness.studies.study import Study
    from strategies.auto import Auto

    times: list[float] = []

    class TimedAuto(Auto):
        def propose(self, history, budget):
            t0 = time.process_time()
            out = super().propose(history, budget)
            times.append(time.process_time() - t0)
            return out

    judge = suites.load(source).judge("pool")
    runner = make_runner("replay", judge)
    for seed in range(-1, seeds):
        if seed == 0:
            times.clear()  # the warm-up study (imports, caches) is not counted
        Study(judge, TimedAuto, Budget(budget), 1000 if seed < 0 else seed, runner, isolation="none").run()
    t = np.array(times) * 1000
    return (
        f"{source}, budget {budget}: {len(t)} proposals over {seeds} studies, CPU ms per proposal mean {t.mean():.1f}, "
        f"95th percentile {np.quantile(t, 0.95):.1f}, worst {t.max():.1f}"
    )
