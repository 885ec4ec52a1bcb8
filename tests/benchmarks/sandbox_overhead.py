"""What the sandbox costs (issue 13), side by side in one run:

    python -m tests.benchmarks.sandbox_overhead [--seeds 20] [--budget 24] [--suite paper-qwen2vl-2b]

1. propose latency at 64 observations: the same user strategy imported here by hand (in-process,
   what modomodo never does with a file) versus in its sandbox (a JSON round trip over the pipe);
2. start-up cost per study: building the strategy in-process; in the sandbox (a fresh sandbox per
   study, issue 29), a cold bwrap and the warm spare started one study ahead;
3. the wall time of `bench` for that user strategy on a replay suite: sandboxed (bwrap),
   unsandboxed (the plain child process of --allow-unsandboxed) and in-process (the class registered
   by hand, which modomodo never does with a file); target: sandboxed <= 2x unsandboxed.
tests/benchmarks/fresh_sandbox_cost.py compares the per-study cost with another checkout's (before/after).
`tests/benchmarks/test_sandbox_overhead.py` measures 1 and 2 under pytest-benchmark (`make bench-speed`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

USER_STRATEGY = textwrap.dedent('''
    import numpy as np
    from strategies import Strategy


    class Nudge(Strategy):
        """A typical cheap user strategy: uniform first, then nudges the best mixture towards a vertex."""
        name = "bench-nudge"
        description = "Nudges the best mixture seen towards a random vertex."
        family = "user"

        def propose(self, history, budget):
            if budget.remaining(history) <= 0:
                return None
            if not history:
                return self.space.uniform()
            ok = [o for o in history if o.ok]
            best = max(ok, key=lambda o: o.objective) if ok else None
            x = self.space.to_vector(best.mixture) if best else np.full(self.space.dim, 1 / self.space.dim)
            rng = np.random.default_rng([self.seed, len(history)])
            v = np.eye(self.space.dim)[rng.integers(self.space.dim)]
            return self.space.from_vector(0.8 * x + 0.2 * v, normalize=True)
''')


_FILE: list[Path] = []


def user_file() -> Path:
    """The user strategy on disk (one file per process: a second file with the same name would clash)."""
    if not _FILE:
        path = Path(tempfile.mkdtemp(prefix="sbx-bench-")) / "bench_nudge.py"
        path.write_text(USER_STRATEGY)
        _FILE.append(path)
    return _FILE[0]


def in_process_class():
    namespace: dict = {}
    exec(compile(USER_STRATEGY, "bench_nudge_here.py", "exec"), namespace)
    return namespace["Nudge"]


def history64():
    from harness.mixture import MixtureSpace
    from tests.strategy_conformance import observe

    space = MixtureSpace(tuple("ABCDE"))
    rng = np.random.default_rng(0)
    return space, tuple(observe(space, space.from_vector(rng.dirichlet(np.ones(5)), normalize=True)) for _ in range(64))


def propose_latency(calls: int = 200) -> dict[str, float]:
    import strategies
    from harness.sandbox import submission
    from harness.sandbox.isolation import make_strategy
    from harness.spec import Budget

    name = submission.load_file(user_file())[0]
    space, hist = history64()
    budget = Budget(80)
    here = in_process_class()(space, seed=0)
    boxed = make_strategy(strategies.get(name), space, 0)
    out = {}
    try:
        for label, s in (("in-process", here), ("sandboxed", boxed)):
            s.propose(hist, budget)
            times = []
            for _ in range(calls):
                t0 = time.perf_counter()
                s.propose(hist, budget)
                times.append(time.perf_counter() - t0)
            out[label] = statistics.median(times)
    finally:
        boxed.close()
    return out


def startup_cost(repeats: int = 10) -> dict[str, float]:
    import strategies
    from harness.sandbox import process, submission
    from harness.sandbox.isolation import make_strategy

    cls = strategies.get(submission.load_file(user_file())[0])
    space, _ = history64()
    here = in_process_class()
    res: dict[str, list[float]] = {k: [] for k in ("in-process", "sandbox: cold bwrap", "sandbox: warm spare")}

    def build(label):
        t0 = time.perf_counter()
        make_strategy(cls, space, 0).close()
        res[label].append(time.perf_counter() - t0)

    for _ in range(repeats):
        t0 = time.perf_counter()
        here(space, seed=0)
        res["in-process"].append(time.perf_counter() - t0)
        process._shutdown()  # no spare: a cold start
        build("sandbox: cold bwrap")
        time.sleep(1.0)  # the spare started meanwhile (as it does while a study runs)
        build("sandbox: warm spare")
    process._shutdown()
    return {k: statistics.median(v) for k, v in res.items()}


def bench_wall(suite: str, budget: int, seeds: int) -> dict[str, float]:
    """bench of the user strategy, each way in a fresh process (so the sandbox mode is decided afresh)."""
    import subprocess
    import sys

    code = textwrap.dedent("""
        import sys, time, tempfile
        from pathlib import Path
        import strategies, strategies.registry
        from harness.bench.bench import bench
        from harness.sandbox import submission
        how, file, suite, budget, seeds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        out = Path(tempfile.mkdtemp(prefix="sbx-wall-"))
        if how.startswith("in-process"):
            ns = {}
            exec(compile(open(file).read(), "bench_nudge_here.py", "exec"), ns)
            strategies.register("bench-nudge")(ns["Nudge"])
            files = []
        else:
            files = [file]
            submission.load_file(file)
        t0 = time.perf_counter()
        report = bench([suite], ["bench-nudge"], [budget], seeds, out / "out", strategy_files=files, progress=False)
        wall = time.perf_counter() - t0
        assert report.failed_studies == 0, report.summary
        print("WALL", wall)
    """)
    file = user_file()
    root = Path(__file__).resolve().parents[2]
    out = {}
    for how, env in (
        ("sandboxed", {"MODOMODO_SANDBOX": "require"}),
        ("unsandboxed", {"MODOMODO_SANDBOX": "off"}),
        ("in-process", {}),
    ):
        proc = subprocess.run(
            [sys.executable, "-c", code, how.split(",")[0], str(file), suite, str(budget), str(seeds)],
            capture_output=True,
            text=True,
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root), **env},
        )
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("WALL")]
        if proc.returncode != 0 or not line:
            raise RuntimeError(f"{how}: {proc.stderr[-2000:]}")
        out[how] = float(line[0].split()[1])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="paper-qwen2vl-2b")
    ap.add_argument("--budget", type=int, default=24)
    ap.add_argument("--seeds", type=int, default=20)
    args = ap.parse_args()
    from harness.sandbox import policy

    print(f"sandbox mode here: {policy.mode()}")
    lat = propose_latency()
    print("\n1. propose latency at 64 observations (median of 200 calls)")
    for k, v in lat.items():
        print(f"   {k:<22} {v * 1e3:8.3f} ms")
    print(f"   overhead per call      {(lat['sandboxed'] - lat['in-process']) * 1e3:8.3f} ms")
    st = startup_cost()
    print("\n2. start-up cost per study (median of 10: building the strategy, then close)")
    for k, v in st.items():
        print(f"   {k:<38} {v * 1e3:8.1f} ms")
    wall = bench_wall(args.suite, args.budget, args.seeds)
    print(f"\n3. bench wall time: {args.suite}, budget {args.budget}, {args.seeds} seeds, 1 worker")
    for k, v in wall.items():
        print(f"   {k:<22} {v:8.2f} s")
    print(f"   sandboxed / in-process  {wall['sandboxed'] / wall['in-process']:6.2f}x")
    print(f"   sandboxed / unsandboxed {wall['sandboxed'] / wall['unsandboxed']:6.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()
