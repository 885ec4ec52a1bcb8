"""Study outcomes of a fixed set of replayed studies, to hold the replay fast path (issue 30, item 7) to the
results of the code before it.

`outcomes()` runs each case as a plain `Study` (the replay runner, no store) and keeps what a study decides:
the recommendation, its score and regret, the pilots' cost and the whole history (each pilot's mixture,
fidelity, value, source, status, cost, running spend). Left out: wall time, the store's counters
(runs_executed / runs_reused: where an answer came from, not what it was), and the two identities another
change may re-key on purpose (each pilot's run_key, the suite's protocol hash); tests/test_replay_fast_path.py
checks run keys itself, against RunSpec.key.

tests/data/replay_outcomes_before_fast_path.json was written by this file run on the code before the fast
path (main at 413353d), with `python tests/replay_reference.py OUT.json`. It uses only interfaces that both
versions have.
"""

from __future__ import annotations

import json
import sys

# (suite, track or None for the suite's default, strategy, budget, seed): the pool track (one seed per
# mixture; several seeds; checkpoints priced by a measured cost model; two scales), the continuous track of
# a recorded suite (surrogate answers) and analytic suites; strategies that pilot at random, by design, by
# a model, and at several fidelities.
CASES = [
    ("paper-qwen2vl-2b", None, "random", 24, 0),
    ("paper-qwen2vl-2b", None, "seed", 11, 1),
    ("paper-qwen2vl-2b", None, "quadratic", 16, 2),
    ("minimodo-tiny", None, "random", 16, 3),
    ("minimodo-tiny", None, "coli", 8, 0),
    ("minimodo-pool", None, "successive-halving", 8, 0),
    ("minimodo-pool", None, "hyperband", 11, 1),
    ("minimodo-pool", None, "random", 24, 2),
    ("regmix-1m-to-60m", None, "successive-halving", 8, 1),
    ("regmix-1m-to-60m", None, "hyperband", 4, 0),
    ("regmix-1m", None, "random", 24, 4),
    ("regmix-60m", None, "regmix-linear", 16, 0),
    ("regmix-1b", "continuous", "random", 8, 0),
    ("synth-bump-8", None, "random", 24, 0),
    ("synth-bowl-5", None, "seed", 16, 1),
    ("synth-corner-6", None, "quadratic", 11, 2),
    ("synth-bump-8", None, "linear", 8, 3),
]

OMIT = ("wall_s", "runs_executed", "runs_reused", "protocol")
OMIT_STEP = ("run_key",)


def decided(record: dict) -> dict:
    """What a study decided, from its outcome record (see the module docstring for what is left out)."""
    out = {k: v for k, v in record.items() if k not in OMIT}
    out["trajectory"] = [{k: v for k, v in t.items() if k not in OMIT_STEP} for t in record.get("trajectory", [])]
    return json.loads(json.dumps(out))  # as the reference file holds it


def run_case(case, runner=None, store=None):
    import strategies
    from harness import suites
    from harness.runners.replay import ReplayRunner
    from harness.spec import Budget
    from harness.studies.study import Study

    name, track, strategy, budget, seed = case
    judge = suites.load(name).judge(track)
    return Study(judge, strategies.get(strategy), Budget(budget), seed, runner or ReplayRunner(judge), store).run()


def outcomes(cases=CASES) -> list[dict]:
    return [{"case": list(c), "outcome": decided(run_case(c).to_dict())} for c in cases]


if __name__ == "__main__":
    with open(sys.argv[1], "w") as f:
        json.dump(outcomes(), f, indent=0, sort_keys=True)
