"""Per-study cost of the strategy sandbox here versus another checkout's (issue 29: a fresh sandbox per study
against the zygote that forked every study of a bench process from one sandbox), side by side in one run:

    python -m tests.benchmarks.fresh_sandbox_cost --baseline /work/main [--suite paper-qwen2vl-2b]
        [--budget 8] [--seeds 20] [--rounds 2]

For each checkout, `bench` of the same user strategy file (tests/benchmarks/sandbox_overhead.py) runs in a
fresh process sandboxed, and once more with the class registered in-process by hand (what modomodo never
does with a file: the cost of the study itself); the checkouts alternate, `rounds` times. The sandbox's
per-study cost is (sandboxed - in-process) / studies, median over rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

from tests.benchmarks.sandbox_overhead import user_file

CODE = """
import sys, time, tempfile
from pathlib import Path
import strategies
from harness.sandbox import submission
from harness.bench.bench import bench
how, file, suite, budget, seeds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
out = Path(tempfile.mkdtemp(prefix="sbx-cost-"))
if how == "in-process":
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
assert report.failed_studies == 0, report
print("WALL", wall, report.studies)
"""


def wall(checkout: Path, how: str, suite: str, budget: int, seeds: int) -> tuple[float, int]:
    env = {**os.environ, "PYTHONPATH": str(checkout), "MODOMODO_SANDBOX": "require", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", CODE, how, str(user_file()), suite, str(budget), str(seeds)],
        capture_output=True,
        text=True,
        cwd=checkout,
        env=env,
    )
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("WALL")]
    if proc.returncode != 0 or not line:
        raise RuntimeError(f"{checkout} {how}: {proc.stderr[-2000:]}")
    _, w, n = line[0].split()
    return float(w), int(n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", required=True, help="another checkout of modomodo (e.g. main before issue 29)")
    ap.add_argument("--suite", default="paper-qwen2vl-2b")
    ap.add_argument("--budget", type=int, default=8)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    here = Path(__file__).resolve().parents[2]
    checkouts = {"baseline": Path(args.baseline).resolve(), "this": here}
    per_study: dict[str, list[float]] = {k: [] for k in checkouts}
    walls: dict[tuple[str, str], list[float]] = {}
    for r in range(args.rounds):
        for label, co in checkouts.items():
            boxed, n = wall(co, "sandboxed", args.suite, args.budget, args.seeds)
            plain, _ = wall(co, "in-process", args.suite, args.budget, args.seeds)
            walls.setdefault((label, "sandboxed"), []).append(boxed)
            walls.setdefault((label, "in-process"), []).append(plain)
            per_study[label].append((boxed - plain) / n)
            print(
                f"round {r}: {label:<8} sandboxed {boxed:7.2f} s, in-process {plain:7.2f} s, {n} studies: "
                f"{(boxed - plain) / n * 1e3:7.1f} ms per study",
                flush=True,
            )
    print(f"\n{args.suite}, budget {args.budget}, {args.seeds} seeds, median of {args.rounds} rounds")
    for label, co in checkouts.items():
        print(
            f"  {label:<8} ({co}): sandbox cost {statistics.median(per_study[label]) * 1e3:7.1f} ms per study "
            f"(bench {statistics.median(walls[(label, 'sandboxed')]):.2f} s sandboxed, "
            f"{statistics.median(walls[(label, 'in-process')]):.2f} s in-process)"
        )
    print(
        f"  CPU time to start one fresh sandbox here (bwrap, Python, numpy, the interface; median of 5): "
        f"{startup_cpu() * 1e3:.0f} ms"
    )


def startup_cpu(repeats: int = 5) -> float:
    """CPU seconds (user + system) that a fresh sandbox's processes spent until it said hello: load-independent,
    unlike wall times on a shared machine."""
    from harness.sandbox import process
    from harness.sandbox.watch import descendants, process_table

    tick = os.sysconf("SC_CLK_TCK")
    out = []
    for _ in range(repeats):
        child = process.Child("bwrap")
        try:
            child.wait_ready(120)
            cpu = 0
            for pid in descendants(child.proc.pid, process_table()):
                fields = Path(f"/proc/{pid}/stat").read_bytes().rpartition(b")")[2].split()
                cpu += int(fields[11]) + int(fields[12])  # utime, stime
            out.append(cpu / tick)
        finally:
            child.close()
    return statistics.median(out)


if __name__ == "__main__":
    main()
