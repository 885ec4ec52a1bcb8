"""What the online machinery costs, measured side by side in one run (issue 15):

    python -m tests.benchmarks.online_overhead [--preset tiny] [--steps 40] [--repeats 3] [--strategy dump]

Alternates, with the same seeds, an offline run at the uniform mixture (datasets.interleave_datasets, TRL's
own sampler) and online runs of `constant` and `--strategy` (the online sampler, the signal capture and a
strategy call after every step), all on the preset's protocol shortened to `--steps` steps, and prints the
training seconds per step of each, their ratio to offline, and the seconds the online machinery itself
measured (signals, strategy calls, validation). Every figure is measured in this run.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics


def measure(preset: str, steps: int, repeats: int, strategy: str) -> str:
    import strategies
    from harness.sandbox.isolation import InProcessStrategy
    from harness.mixture import MixtureSpace
    from harness.training import PRESETS, train_and_evaluate, train_and_evaluate_online
    from harness.training.online import OnlineMixture

    cfg = dataclasses.replace(PRESETS[preset], steps=steps, eval_n=8)
    space = MixtureSpace(tuple(cfg.train_domains))
    kinds = ["offline uniform", "online constant", f"online {strategy}"]
    per_step = {k: [] for k in kinds}
    machinery = {k: [] for k in kinds[1:]}
    train_and_evaluate(cfg, space.uniform().as_dict(), 0)  # warm: the base model is built and cached once
    for r in range(repeats):
        for k in kinds:
            if k == "offline uniform":
                res = train_and_evaluate(cfg, space.uniform().as_dict(), 100 + r)
            else:
                name = k.split()[-1]
                online = OnlineMixture(InProcessStrategy(strategies.get(name), space, r, {}, None), space, name)
                res = train_and_evaluate_online(cfg, online, 100 + r)
                machinery[k].append(res.timings["online"] / steps)
            per_step[k].append(res.timings["train"] / steps)
    base = statistics.median(per_step["offline uniform"])
    lines = [
        f"# Online machinery overhead: preset {preset}, {steps} steps, {repeats} repeats (medians)",
        "",
        "| run | train s / step | ratio to offline | online machinery ms / step |",
        "|---|---|---|---|",
    ]
    for k in kinds:
        m = statistics.median(per_step[k])
        mach = f"{1000 * statistics.median(machinery[k]):.2f}" if k in machinery else "-"
        lines.append(f"| {k} | {m:.4f} | {m / base:.3f} | {mach} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--strategy", default="dump")
    a = ap.parse_args()
    print(measure(a.preset, a.steps, a.repeats, a.strategy))


if __name__ == "__main__":
    main()
