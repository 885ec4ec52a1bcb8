"""Build the four RegMix suites from the files as released (baselines/regmix/released/, MIT, Sea AI Lab):

    python baselines/regmix/build_regmix_suites.py [RELEASED_DIR] [--only regmix-1m,regmix-1m-to-60m]

- regmix-1m: every 1M run: the 1,000-run sweep (whose first 512 rows are the paper's regression training
  set, `train_*_1m.csv`, checked here to be identical) plus the 256 test runs, which are not in the sweep:
  1,256 mixtures, one run each.
- regmix-60m: the 256 test mixtures at 60M. regmix-1b: the 64 test mixtures at 1B (none among the 1M ones).
- regmix-1m-to-60m: the 256 mixtures run at both scales as one two-scale pool: runs.csv holds the 60M runs
  (fidelity 1.0, what a recommendation is scored by), fidelities.csv both scales, the 1M runs at the fidelity
  level SMALL_LEVEL (= their cost in 60M run-equivalents); the card's `cost_model` (kind `scales`) makes each
  pilot a separate model at its scale (harness.spec.CostModel, kind scales).

Objective: the Pile-CC validation loss (`loss_pile_cc`, minimised), the paper's target; the other 12
validation losses stay as score columns. Weights: the released ones are rounded to 3 decimals (rows sum to
0.996-1.003); they are stored normalised and rounded to 6 decimals by the largest-remainder rule, so each
row sums to exactly 1 and the pool's candidate keys (rounded to 9 digits) are stable.
"""

from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
RELEASED = HERE / "released"
BASELINES = HERE.parent
FAMILY = "lm-pretraining"
METRIC = "loss_pile_cc"

# The 17 training domains in the order of the released mixture files (`train_the_pile_<id>`), and the display
# names the 1,000-run sweep uses for them.
DOMAINS = {
    "arxiv": "ArXiv",
    "freelaw": "FreeLaw",
    "nih_exporter": "NIH ExPorter",
    "pubmed_central": "PubMed Central",
    "wikipedia_en": "Wikipedia (en)",
    "dm_mathematics": "DM Mathematics",
    "github": "Github",
    "philpapers": "PhilPapers",
    "stackexchange": "Stack Exchange",
    "enron_emails": "Enron Emails",
    "gutenberg_pg_19": "Gutenberg (PG-19)",
    "pile_cc": "Pile-CC",
    "ubuntu_irc": "Ubuntu IRC",
    "europarl": "EuroParl",
    "hackernews": "HackerNews",
    "pubmed_abstracts": "PubMed Abstracts",
    "uspto_backgrounds": "USPTO Backgrounds",
}
# The 13 validation domains (four training domains have no validation loss in the release).
VAL_DOMAINS = [
    "arxiv",
    "freelaw",
    "pubmed_central",
    "wikipedia_en",
    "dm_mathematics",
    "github",
    "stackexchange",
    "gutenberg_pg_19",
    "pile_cc",
    "ubuntu_irc",
    "hackernews",
    "pubmed_abstracts",
    "uspto_backgrounds",
]
WEIGHT_COLUMNS = {d: f"w_{d}" for d in DOMAINS}
SCORES = [f"loss_{d}" for d in VAL_DOMAINS]

# Scales as the paper gives them (Liu et al. 2025, Sec. 4 and the abstract): proxies of 1M parameters trained
# on 1B tokens; the same 256 test mixtures at 60M parameters on 1B tokens; the 64 test mixtures at 1B
# parameters on 25B tokens. Training FLOPs ~ 6 N D (Kaplan et al. 2020).
SCALES = {
    "1m": {"params": 1e6, "tokens": 1e9},
    "60m": {"params": 60e6, "tokens": 1e9},
    "1b": {"params": 1e9, "tokens": 25e9},
}
# What the released model configs count (sail-sg/regmix model_training/lit_gpt/config.py: tinyllama_1M n_layer 2,
# n_embd 256, intermediate 512; tinyllama_60M n_layer 10, n_embd 768, intermediate 1536; vocab 50,432): 4 d^2
# attention + 3 d i SwiGLU per layer, without embeddings. Stated on the card beside the paper's round numbers.
VOCAB = 50_432
NON_EMBEDDING = {"1m": 2 * (4 * 256**2 + 3 * 256 * 512), "60m": 10 * (4 * 768**2 + 3 * 768 * 1536)}


def flops(scale: str) -> float:
    return 6 * SCALES[scale]["params"] * SCALES[scale]["tokens"]


COST_1M_IN_60M = flops("1m") / flops("60m")  # 1/60
# The fidelity level of a 1M pilot: its cost in 60M run-equivalents, so the multi-fidelity strategies (whose
# rungs are the levels, ordered small to large) see a cheap rung and a full one, and a level means what it costs.
SMALL_LEVEL = round(COST_1M_IN_60M, 6)

CITATION = (
    "Liu, Q., Zheng, X., Muennighoff, N., Zeng, G., Dou, L., Pang, T., Jiang, J. & Lin, M. RegMix: Data "
    "Mixture as Regression for Language Model Pre-training. ICLR 2025 (arXiv:2407.01492). Data: "
    "github.com/sail-sg/regmix, data/ (MIT License, Copyright (c) 2024 Sea AI Lab)."
)
LICENCE = {
    "name": "MIT",
    "holder": "Sea AI Lab (2024)",
    "file": "LICENSE",
    "note": "the released tables, copied unchanged into baselines/regmix/released/; keep LICENSE with any copy",
}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def simplex_6(W: np.ndarray) -> np.ndarray:
    """Rows normalised to sum 1 and rounded to 6 decimals by the largest-remainder rule (exact micro-units)."""
    W = W / W.sum(axis=1, keepdims=True) * 1_000_000
    base = np.floor(W).astype(np.int64)
    short = 1_000_000 - base.sum(axis=1)
    out = base.copy()
    for i, k in enumerate(short):
        order = np.argsort(-(W[i] - base[i]), kind="stable")
        out[i, order[:k]] += 1
    return out / 1_000_000


def released_pair(folder: Path, mixture_file: str, loss_file: str, sweep_names: bool = False) -> pd.DataFrame:
    """One released (mixture, loss) file pair joined on `index`: weight columns w_<domain>, loss_<domain>."""
    mix, loss = pd.read_csv(folder / mixture_file), pd.read_csv(folder / loss_file)
    if sweep_names:
        mix = mix.rename(columns={v: f"train_the_pile_{k}" for k, v in DOMAINS.items()})
        loss = loss.rename(columns={DOMAINS[d]: f"metric/the_pile_{d}_val_loss" for d in VAL_DOMAINS})
    wcols = [f"train_the_pile_{d}" for d in DOMAINS]
    lcols = [f"metric/the_pile_{d}_val_loss" for d in VAL_DOMAINS]
    missing = [c for c in ["index"] + wcols if c not in mix.columns] + [c for c in ["index"] + lcols if c not in loss]
    if missing:
        raise ValueError(f"{mixture_file}/{loss_file}: columns {missing} missing")
    joined = mix[["index"] + wcols].merge(loss[["index"] + lcols], on="index", how="inner", validate="one_to_one")
    if len(joined) != len(mix) or len(joined) != len(loss):
        raise ValueError(
            f"{mixture_file} ({len(mix)} rows) and {loss_file} ({len(loss)} rows) do not join 1:1 on index"
        )
    out = pd.DataFrame({"index": joined["index"].to_numpy()})
    W = simplex_6(joined[wcols].to_numpy(float))
    for j, d in enumerate(DOMAINS):
        out[WEIGHT_COLUMNS[d]] = W[:, j]
    for d in VAL_DOMAINS:
        out[f"loss_{d}"] = joined[f"metric/the_pile_{d}_val_loss"].to_numpy(float)
    return out


def all_1m(folder: Path) -> pd.DataFrame:
    """The sweep (1,000) + the test runs (256): the sweep's first 512 rows must be the training set, exactly."""
    sweep = released_pair(folder, "sweep1000_mixture_1m.csv", "sweep1000_pile_loss_1m.csv", sweep_names=True)
    train = released_pair(folder, "train_mixture_1m.csv", "train_pile_loss_1m.csv")
    head = sweep.iloc[: len(train)].reset_index(drop=True)
    if not (
        np.array_equal(head["index"], train["index"])
        and np.allclose(head.drop(columns="index"), train.drop(columns="index"), atol=1e-12)
    ):
        raise ValueError("the sweep's first 512 rows are not the released training set: the overlap assumed here fails")
    test = released_pair(folder, "test_mixture_1m.csv", "test_pile_loss_1m.csv")
    sweep.insert(0, "source", "sweep1000")
    test.insert(0, "source", "test")
    both = pd.concat([sweep, test], ignore_index=True)
    if both.duplicated([WEIGHT_COLUMNS[d] for d in DOMAINS]).any():
        raise ValueError("a test mixture repeats a sweep mixture: the 1,256 pool would double-count it")
    return both


def common_card(name: str, scale: str, description: str, files: list[str], folder: Path, extra=None) -> dict:
    n, d = SCALES[scale]["params"], SCALES[scale]["tokens"]
    card = {
        "version": "1",
        "family": FAMILY,
        "description": description,
        "citation": CITATION,
        "licence": LICENCE,
        "scale": {
            "params": n,
            "tokens": d,
            "train_flops_6ND": 6 * n * d,
            "source": "the paper's counts (Liu et al. 2025: 1M and 60M models on 1B tokens, 1B models on 25B)",
        },
        "objective": (
            "Pile-CC validation loss (`loss_pile_cc`, minimised), the paper's regression target; the other "
            "12 validation losses are score columns"
        ),
        "seeds_note": "one training run per mixture (the release has no repeated seeds): no measured run-to-run noise",
        "weights_note": (
            "released weights are rounded to 3 decimals (rows sum to 0.996-1.003); stored normalised "
            "and rounded to 6 decimals, largest remainder, so every row sums to exactly 1"
        ),
        "provenance": {
            "builder": "baselines/regmix/build_regmix_suites.py",
            "source": "github.com/sail-sg/regmix data/ (copied unchanged to baselines/regmix/released/)",
            "files": {f: sha(folder / f) for f in files},
        },
    }
    card.update(extra or {})
    return card


def build(folder: Path = RELEASED, out: Path = BASELINES, only: set[str] | None = None) -> list[Path]:
    """Write the suites (all four, or those named in `only`) into `out`; returns their folders."""
    from harness.factory.importer import import_table

    folder = Path(folder)
    built = []

    def write(name: str, table: pd.DataFrame, extra: dict, **kw) -> None:
        if only and name not in only:
            return
        dest = out / name
        import_table(
            table[list(WEIGHT_COLUMNS.values()) + SCORES],
            name,
            WEIGHT_COLUMNS,
            METRIC,
            "min",
            dest,
            scores=SCORES,
            card_extra={"name": name, **extra},
            overwrite=True,
            source=f"baselines/regmix/released ({', '.join(extra['provenance']['files'])})",
            **kw,
        )
        shutil.copyfile(folder / "LICENSE", dest / "LICENSE")
        built.append(dest)

    one = all_1m(folder)
    rows = {"sweep1000": int((one["source"] == "sweep1000").sum()), "test": int((one["source"] == "test").sum())}
    write(
        "regmix-1m",
        one,
        common_card(
            "regmix-1m",
            "1m",
            f"RegMix's every 1M-parameter run (Liu et al. 2025): {len(one)} mixtures of 17 Pile domains, one model each "
            f"trained on 1B tokens; objective the Pile-CC validation loss (min). The 1,000-run sweep (its first 512 rows "
            f"are the paper's regression training set, identical) plus the 256 test mixtures. Public runs, MIT licence.",
            [
                "sweep1000_mixture_1m.csv",
                "sweep1000_pile_loss_1m.csv",
                "train_mixture_1m.csv",
                "train_pile_loss_1m.csv",
                "test_mixture_1m.csv",
                "test_pile_loss_1m.csv",
            ],
            folder,
            {
                "rows": {
                    **rows,
                    "order": "runs.csv rows 1-1000: sweep index 1-1000; rows 1001-1256: test index 1-256",
                    "train_512": "sweep rows 1-512 equal train_mixture_1m/train_pile_loss_1m (checked by the builder)",
                }
            },
        ),
    )

    t60 = released_pair(folder, "test_mixture_60m.csv", "test_pile_loss_60m.csv")
    write(
        "regmix-60m",
        t60,
        common_card(
            "regmix-60m",
            "60m",
            "RegMix's 256 test mixtures trained at 60M parameters on 1B tokens (Liu et al. 2025), one model each; "
            "objective the Pile-CC validation loss (min). The same mixtures as regmix-1m's test rows. Public runs, MIT.",
            ["test_mixture_60m.csv", "test_pile_loss_60m.csv"],
            folder,
            {"rows": {"order": "runs.csv row i: test index i (1-256)"}},
        ),
    )

    t1b = released_pair(folder, "test_mixture_1B.csv", "test_pile_loss_1B.csv")
    write(
        "regmix-1b",
        t1b,
        common_card(
            "regmix-1b",
            "1b",
            "RegMix's 64 mixtures trained at 1B parameters on 25B tokens (Liu et al. 2025), one model each; objective "
            "the Pile-CC validation loss (min). None of them is among the 1M or 60M mixtures. Public runs, MIT.",
            ["test_mixture_1B.csv", "test_pile_loss_1B.csv"],
            folder,
            {"rows": {"order": "runs.csv row i: index i - 1 (0-63)"}},
        ),
    )

    # -- the two-scale pool ------------------------------------------------------------------------------
    t1 = released_pair(folder, "test_mixture_1m.csv", "test_pile_loss_1m.csv")
    if not np.array_equal(t1[list(WEIGHT_COLUMNS.values())].to_numpy(), t60[list(WEIGHT_COLUMNS.values())].to_numpy()):
        raise ValueError("test_mixture_1m.csv and test_mixture_60m.csv differ: the two scales do not share mixtures")
    long = pd.concat([t1.assign(fidelity=SMALL_LEVEL), t60.assign(fidelity=1.0)], ignore_index=True)
    long = long[list(WEIGHT_COLUMNS.values()) + ["fidelity"] + SCORES]
    buf = io.StringIO()
    long.to_csv(buf, index=False, float_format="%.15g")
    text = buf.getvalue()
    n1, n60 = NON_EMBEDDING["1m"], NON_EMBEDDING["60m"]
    with_head = (n1 + 256 * VOCAB) / (n60 + 768 * VOCAB)  # the output layer's matmul is compute too
    source = (
        f"training FLOPs 6*N*D with the paper's counts: 1M: 6 x 1e6 params x 1e9 tokens = 6e15; 60M: "
        f"6 x 60e6 x 1e9 = 3.6e17; ratio 1/60 = {COST_1M_IN_60M:.6f} 60M run-equivalents per 1M run"
    )
    extra = common_card(
        "regmix-1m-to-60m",
        "60m",
        f"Two scales of RegMix's 256 test mixtures (Liu et al. 2025) as one pool: a pilot trains a mixture at 1M "
        f"parameters (fidelity {SMALL_LEVEL:g}, costing {SMALL_LEVEL:g} 60M runs) or at 60M (fidelity 1, cost 1); a "
        f"recommendation is scored by its 60M Pile-CC validation loss (min). Each pilot is a separate model at its "
        f"scale (cost_model kind scales), never a continuation. Public runs, MIT.",
        ["test_mixture_1m.csv", "test_pile_loss_1m.csv", "test_mixture_60m.csv", "test_pile_loss_60m.csv"],
        folder,
        {"rows": {"order": "runs.csv row i: test index i (1-256) at 60M; fidelities.csv: the 256 at 1M, then at 60M"}},
    )
    extra["scales"] = {
        "1m": {**SCALES["1m"], "train_flops_6ND": flops("1m"), "fidelity": SMALL_LEVEL, "non_embedding_params": n1},
        "60m": {**SCALES["60m"], "train_flops_6ND": flops("60m"), "fidelity": 1.0, "non_embedding_params": n60},
        "cost_ratio_1m_per_60m": round(COST_1M_IN_60M, 9),
        "caveat": (
            f"the ratio rests on the paper's round parameter counts. The released configs give "
            f"{n1:,} and {n60:,} non-embedding parameters (ratio {n1 / n60:.4f} = 1/{n60 / n1:.0f}); with the "
            f"output layer (vocabulary 50,432) counted, the 1M model's compute is dominated by it and the ratio "
            f"rises to about 1/{round(1 / with_head)}. A user with measured GPU-hours should put those in "
            f"cost_model.cost instead."
        ),
    }
    extra["fidelities"] = {
        "table": "fidelities.csv",
        "column": "fidelity",
        "levels": [SMALL_LEVEL, 1.0],
        "rows": len(long),
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
        "meaning": (
            f"fidelity = model scale: {SMALL_LEVEL:g} is the 1M-parameter model of the mixture, 1.0 the 60M "
            f"one (the rows of runs.csv); the level of the small scale is its cost in 60M runs, so the "
            f"multi-fidelity strategies' rungs are ordered by cost"
        ),
    }
    # the level is a label rounded to 6 decimals; the cost is the exact ratio, so 60 1M pilots cost one 60M run
    extra["cost_model"] = {"kind": "scales", "cost": {SMALL_LEVEL: COST_1M_IN_60M, 1.0: 1.0}, "source": source}
    extra["how_to_build_your_own"] = (
        "From your own small and large runs of the same mixtures: runs.csv = the large runs (weights + scores); "
        "fidelities.csv = the same columns plus `fidelity`, one row per (mixture, scale), the small scale at a level "
        "in (0, 1) (e.g. its cost relative to the large run), the large at 1.0; the card's `fidelities` block names "
        "the table, its levels and its sha256, and `cost_model: {kind: scales, cost: {<level>: <run-equivalents>}, "
        "source: ...}` says what a pilot at each scale costs. baselines/regmix/build_regmix_suites.py builds this one "
        "that way; every mixture of runs.csv needs a row at every level."
    )
    write("regmix-1m-to-60m", t60, extra, extra_files={"fidelities.csv": text})
    return built


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("released", nargs="?", default=str(RELEASED), help="folder of the released CSV files")
    ap.add_argument("--only", default="", help="comma list of suite names to rebuild (default: all four)")
    a = ap.parse_args()
    for p in build(Path(a.released), only={x for x in a.only.split(",") if x} or None):
        print(p)
