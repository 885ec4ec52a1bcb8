"""Throughput of the reward functions (pytest-benchmark): completions scored per second."""

import random

import pytest

from tasks import rewards as R
from tasks.minimodo import ALL, make_rows


def _batch(n=512, seed=0):
    rng = random.Random(seed)
    rows = [r for name in ALL for r in make_rows(name, 8, seed)]
    comps, sols, tasks = [], [], []
    for _ in range(n):
        r = rng.choice(rows)
        sol = r["solution"]
        text = rng.choice(
            [
                f"<think>ok</think><answer>{sol}</answer>",
                f"<think></think><answer>{sol[:-3]}</answer>",
                "<think>?</think><answer>B</answer>",
                "garbage " * 20,
                "<answer>" * 50,
            ]
        )
        comps.append([{"role": "assistant", "content": text}])
        sols.append(sol)
        tasks.append(r["task"])
    return comps, sols, tasks


@pytest.mark.parametrize("fn", [R.accuracy_reward, R.format_reward], ids=lambda f: f.__name__)
def test_reward_throughput(benchmark, fn):
    comps, sols, tasks = _batch()
    out = benchmark(fn, prompts=None, completions=comps, solution=sols, task=tasks)
    assert len(out) == len(comps)
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        per_s = len(comps) / stats.stats.median
        benchmark.extra_info["completions_per_s"] = round(per_s)
        assert per_s > 10_000, f"{fn.__name__}: {per_s:.0f} completions/s"
