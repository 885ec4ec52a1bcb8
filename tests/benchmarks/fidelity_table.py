"""A multi-fidelity recorded suite with a known truth, for the fidelity replay's tests and benchmark.

What the `minimodo-pool` sweep will give, before it has finished: the `minimodo-pool-live` protocol's
design (`harness.factory.sweep.design`: the seed designs, then Dirichlet draws) × training seeds, every run
scored at the protocol's checkpoints 0.25 / 0.5 / 1.0. The records are fake but go through the
real path: `RunResult`s with `checkpoints` in a `ResultStore`, exported by
`harness.factory.export.export_suite` (runs.csv + fidelities.csv + the card's `fidelities` block),
then loaded as any suite is (`harness.suites.load`).

The truth, per objective (`Out_Score_p` the metric, `In_Score_p`, `Out_Score`, `In_Score` beside it):
- full fidelity: a per-mixture effect `z` (tests/benchmarks/pool_table.true_score of the weights,
  standardised: a dominant dataset, interactions, diminishing returns), times `between_sd`;
- fidelity f < 1: `rho[f] * z + sqrt(1 - rho[f]^2) * e_f` (e_f independent standard normal per
  mixture), so the true per-mixture effects at f and at 1.0 have Pearson correlation `rho[f]`
  (Spearman (6/pi) asin(rho/2) for Gaussian effects), plus a mean that rises with training
  (`level_mean[f]`);
- seed noise: sd `seed_sd` at every fidelity, correlated `seed_corr` between the fidelities of one
  run (a checkpoint is the same run part-way).
`rho = 1` with `seed_sd = 0` gives a table in which every low fidelity ranks the mixtures exactly as
the full one does. The measured figures (SNR per fidelity, Spearman of per-mixture means) are on the
exported card, as for a real sweep.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
LEVELS = (0.25, 0.5, 1.0)
OBJECTIVES = ("Out_Score_p", "In_Score_p", "Out_Score", "In_Score")
DEFAULT_RHO = {0.25: 0.6, 0.5: 0.85}
LEVEL_MEAN = {0.25: 0.30, 0.5: 0.36, 1.0: 0.40}


def make_fidelity_suite(
    folder,
    n_mix: int = 96,
    seeds: int = 8,
    rho: dict | float | None = None,
    between_sd: float = 0.02,
    seed_sd: float = 0.02,
    seed_corr: float = 0.5,
    seed: int = 0,
    name: str = "fidelity-table",
    level_mean: dict | None = None,
) -> Path:
    """Write the suite `name` into `folder/name` (through a store in `folder/name-store` and `export_suite`;
    the live card it is exported from in `folder/name-live`) and return the suite's folder."""
    from harness import suites
    from harness.spec import RunResult, fidelity_key
    from harness.store import ResultStore
    from harness.factory.export import export_suite
    from harness.factory.sweep import design, plan
    from tests.benchmarks.pool_table import true_score

    folder = Path(folder)
    rho = DEFAULT_RHO if rho is None else ({f: float(rho) for f in LEVELS[:-1]} if np.isscalar(rho) else rho)
    level_mean = level_mean or LEVEL_MEAN
    card = yaml.safe_load((ROOT / "baselines" / "minimodo-pool-live" / "card.yaml").read_text())
    card["name"] = f"{name}-live"
    live_dir = folder / f"{name}-live"
    live_dir.mkdir(parents=True, exist_ok=True)
    (live_dir / "card.yaml").write_text(yaml.safe_dump(card))
    live = suites.load(live_dir)
    mixes = design(live.space, n_mix, seed=seed)
    W = np.array([live.space.to_vector(m) for m in mixes])
    rng = np.random.default_rng([seed, n_mix, seeds, 16])
    effect = {}  # objective -> fidelity -> per-mixture true effect
    for j, obj in enumerate(OBJECTIVES):
        z = true_score(W, seed + j)
        z = (z - z.mean()) / z.std()
        per = {1.0: z}
        for f in LEVELS[:-1]:
            r = float(rho[f])
            per[f] = r * z + np.sqrt(max(0.0, 1 - r * r)) * rng.standard_normal(len(z))
        effect[obj] = per
    store = ResultStore(folder / f"{name}-store")
    index = {m.key(): i for i, m in enumerate(mixes)}
    for spec in plan(live, mixes, range(seeds)):
        i = index[spec.mixture.key()]
        ck = {}
        shared = rng.standard_normal(len(OBJECTIVES))
        for f in LEVELS:
            own = rng.standard_normal(len(OBJECTIVES))
            noise = seed_sd * (seed_corr * shared + np.sqrt(max(0.0, 1 - seed_corr**2)) * own)
            ck[fidelity_key(f)] = {
                obj: float(level_mean[f] + between_sd * effect[obj][f][i] + noise[j])
                for j, obj in enumerate(OBJECTIVES)
            }
        store.put(
            RunResult(
                spec.key,
                spec.to_dict(),
                "ok",
                dict(ck["1.0"]),
                live.metric,
                "trained",
                {"seconds": 80.0},
                provenance={"git_sha": "fidelity-table"},
                checkpoints=ck,
            )
        )
    return export_suite(
        store,
        live,
        name,
        folder / name,
        overwrite=True,
        signal_notes=f"synthetic (tests/benchmarks/fidelity_table.py): rho={rho}, "
        f"between_sd={between_sd}, seed_sd={seed_sd}, seed_corr={seed_corr}, seed={seed}",
    )
