"""Online strategies (issue 15): the interface, the strategies' behaviour, the sampler and signals, real
GRPO runs whose weights change as they train, the online track of `bench` (kill and resume, a raising
strategy, a strategy from a file in its sandbox), and the conformance suite for every online strategy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import strategies
from harness.sandbox.isolation import InProcessStrategy
from harness.mixture import Mixture, MixtureSpace
from harness.online_signals import DomainSignal, StepSignals
from harness.spec import RunSpec
from harness.sandbox import submission
from strategies.base import strategy_kind
from tests.online_conformance import OnlineConformance, drive

ROOT = Path(__file__).resolve().parent.parent
ONLINE = strategies.names("online")

USER_ONLINE = '''
import numpy as np
from strategies.online import OnlineStrategy


class Tilt(OnlineStrategy):
    """A user's online strategy: moves weight towards the domain with the highest mean reward so far."""
    name = "user-tilt"
    description = "Test online strategy from a file: tilts towards the best-rewarded domain."

    def __init__(self, space, seed=0):
        super().__init__(space, seed)
        self.total = np.zeros(space.dim)
        self.count = np.zeros(space.dim)

    def update(self, signals):
        for i, d in enumerate(self.space.datasets):
            s = signals.domains[d]
            if s.drawn and s.mean_reward is not None:
                self.total[i] += s.mean_reward * s.prompts
                self.count[i] += s.prompts
        mean = np.where(self.count > 0, self.total / np.maximum(self.count, 1), 0.0)
        return self.weights(0.5 / self.space.dim + 0.5 * (mean == mean.max()) / max(1, (mean == mean.max()).sum()))
'''

RAISER = """
from strategies.online import OnlineStrategy


class Raiser(OnlineStrategy):
    name = "user-raiser"

    def update(self, signals):
        if signals.step >= 3:
            raise RuntimeError("bug in the user's update")
        return self.space.uniform()
"""


def _user_file(text: str, name: str) -> str:
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="modomodo-online-")) / name
    path.write_text(text)
    return submission.load_file(path)[0], str(path)


USER_NAME, USER_PATH = _user_file(USER_ONLINE, "user_tilt.py")

for _name in ONLINE + [USER_NAME]:
    _cls = "TestOnlineConformance_" + "".join(c if c.isalnum() else "_" for c in _name)
    globals()[_cls] = type(_cls, (OnlineConformance,), {"strategy_name": _name})


def test_every_online_builtin_is_covered():
    assert set(ONLINE) >= {"dump", "odm", "aioli", "constant"}
    covered = {v.strategy_name for k, v in globals().items() if k.startswith("TestOnlineConformance_")}
    assert set(ONLINE) | {USER_NAME} <= covered
    assert strategy_kind(strategies.get(USER_NAME)) == "online"  # the sandbox reported the file's kind


SPACE = MixtureSpace(("a", "b", "c", "d", "e"))


def signals(step, per_domain, weights=None):
    """StepSignals from {domain: (prompts, mean_reward, mean_abs_advantage)}; the rest not drawn."""
    doms = {}
    for d in SPACE.datasets:
        if d in per_domain:
            n, r, a = per_domain[d]
            doms[d] = DomainSignal(n, r, a, 0.1, 0.0)
        else:
            doms[d] = DomainSignal(0)
    return StepSignals(step, doms, (weights or SPACE.uniform()).as_dict())


# -- the strategies do what their papers say ------------------------------------------------------------
def test_dump_moves_weight_to_the_domain_with_the_largest_absolute_advantage():
    s = strategies.get("dump")(SPACE, seed=0)
    assert s.start() == SPACE.uniform()
    m = None
    for t in range(1, 101):  # every domain drawn; 'c' keeps the largest |advantage|, 'e' has none left
        m = s.update(
            signals(
                t, {"a": (1, 1.0, 0.3), "b": (1, 1.0, 0.3), "c": (1, 1.0, 0.9), "d": (1, 1.0, 0.3), "e": (1, 3.0, 0.0)}
            )
        )
    assert max(m, key=m.get) == "c" and m["c"] > 0.9 and m["e"] < m["a"]
    fresh = strategies.get("dump")(SPACE, seed=0)  # never drawn: mu 0 and the bonus sqrt(2 ln(N + 1) / 1)
    m = fresh.update(signals(1, {"a": (2, 1.0, 0.1)}))
    assert m["a"] < min(m[d] for d in "bcde")


def test_dump_exploration_bonus_favours_rarely_drawn_domains():
    s = strategies.get("dump")(SPACE, seed=0, temperature=1.0)
    for t in range(1, 41):  # equal |advantage|, but 'e' drawn once in all
        s.update(
            signals(
                t,
                {
                    "a": (1, 1, 0.5),
                    "b": (1, 1, 0.5),
                    "c": (1, 1, 0.5),
                    "d": (1, 1, 0.5),
                    **({"e": (1, 1, 0.5)} if t == 1 else {}),
                },
            )
        )
    scores = s.scores()
    assert scores[4] > scores[0]


def test_odm_gives_more_weight_to_the_domain_with_more_left_to_learn():
    s = strategies.get("odm")(SPACE, seed=0)
    m = None
    for t in range(1, 301):  # 'b' keeps the largest |advantage| (ODM's loss analogue here), the others less
        m = s.update(
            signals(
                t,
                {"a": (1, 1.0, 0.3), "b": (1, 0.5, 0.9), "c": (1, 1.0, 0.3), "d": (1, 1.0, 0.3), "e": (1, 1.0, 0.3)},
                weights=m,
            )
        )
    assert max(m, key=m.get) == "b" and m["b"] > 1 / SPACE.dim + 0.03
    k = SPACE.dim  # the released code's exploration floor: every arm keeps at least eps_t
    assert min(m.values()) >= min(1 / k, np.sqrt(np.log(k) / (k * 300))) - 1e-9


def test_aioli_probes_then_moves_towards_the_domain_that_raises_rewards():
    s = strategies.get("aioli")(SPACE, seed=0, update_steps=40, lp_rounds=1, lp_steps=4, eta=1.0, ema=None)
    m = s.start()
    queue, issued, trained_d = [m, m], [m], 0
    for t in range(1, 121):
        drawn = queue.pop(0)
        # 16 prompts a step, split by the drawn weights; training on 'd' raises every domain's reward
        prompts = {x: int(round(16 * drawn[x])) for x in SPACE.datasets}
        r = 1.0 + 0.01 * trained_d
        m = s.update(signals(t, {x: (n, r, 0.5) for x, n in prompts.items() if n}, weights=drawn))
        trained_d += prompts["d"]
        queue.append(m)
        issued.append(m)
    probes = issued[:19]  # steps 1-20: each domain's smoothed one-hot probe for 4 steps, in a random order
    tops = [max(probes[i], key=probes[i].get) for i in (0, 3, 7, 11, 15)]  # decision n governs step n + 2
    assert sorted(tops) == sorted(SPACE.datasets) and all(max(p.values()) == pytest.approx(0.75) for p in probes)
    assert s.p.argmax() == 3 and s.p[3] > 0.3  # after 3 rounds p leans on 'd'


def test_constant_never_changes_and_takes_given_weights():
    s = strategies.get("constant")(SPACE, seed=0, weights={"a": 0.5, "b": 0.5})
    answers = drive(s, SPACE, 50)
    assert {m.key() for m in answers} == {SPACE.mixture({"a": 0.5, "b": 0.5}).key()}


def test_online_strategies_refuse_bad_parameters():
    with pytest.raises(ValueError, match="temperature"):
        strategies.get("dump")(SPACE, temperature=0)
    with pytest.raises(ValueError, match="update_steps"):
        strategies.get("aioli")(SPACE, update_steps=10, lp_steps=4)
    with pytest.raises(ValueError, match="count_unit"):
        strategies.get("dump")(SPACE, count_unit="tokens")
    with pytest.raises(ValueError, match="signal"):
        strategies.get("odm-exp3")(SPACE, signal="loss")
    with pytest.raises(ValueError, match="smoothing"):
        strategies.get("odm")(SPACE, smoothing=1.5)


# -- sampler and signals --------------------------------------------------------------------------------
def test_sampler_follows_the_weights_in_trl_layout():
    from harness.training.online import DomainWeightedSampler

    ranges = {"a": range(0, 10), "b": range(10, 20), "c": range(20, 25)}
    s = DomainWeightedSampler(ranges, {"a": 1.0}, prompts=2, num_generations=3, repeat_count=2, batches=12, seed=0)
    it = iter(s)
    first = [next(it) for _ in range(12)]  # one batch: 2 prompts × 3 generations, repeated twice
    assert first[:6] == first[6:] and first[0] == first[1] == first[2] and all(i < 10 for i in first)
    s.set_weights({"c": 1.0})
    rest = list(it)
    assert len(first) + len(rest) == len(s) == 12 * 2 * 2 * 3
    later = {i for i in rest[12:]}  # the batch drawn after the change (the one after `first` was drawn already)
    assert later and all(20 <= i < 25 for i in later)
    # a domain used up is reshuffled, never exhausted: 'c' has 5 rows and gave 2 per batch for 11 batches
    assert [d["prompts"] for d in s.draws[1:]] == [[0, 0, 2]] * 11
    with pytest.raises(Exception, match="not a mixture"):
        s.set_weights({"a": float("nan")})


def test_domain_signals_of_a_known_batch():
    from harness.training.online import domain_signals, merge_signals

    rewards = [3, 3, 3, 3, 0, 1, 2, 3]  # group 1 ('a'): all equal; group 2 ('b'): spread
    adv = [0, 0, 0, 0, -1.5, -0.5, 0.5, 1.5]
    sig = domain_signals(["a", "b", "c"], ["a", "b"], rewards, adv, 4)
    assert sig["a"] == DomainSignal(1, 3.0, 0.0, 0.0, 1.0)
    assert sig["b"].prompts == 1 and sig["b"].mean_reward == 1.5 and sig["b"].mean_abs_advantage == 1.0
    assert sig["b"].reward_variance == pytest.approx(1.25) and sig["b"].frac_zero_std == 0.0
    assert sig["c"] == DomainSignal(0) and not sig["c"].drawn
    merged = merge_signals(["a", "b", "c"], [sig, domain_signals(["a", "b", "c"], ["b"], [1, 1, 1, 1], [0] * 4, 4)])
    assert merged["b"].prompts == 2 and merged["b"].mean_reward == pytest.approx(1.25)
    assert merged["b"].reward_variance == pytest.approx(np.var([0, 1, 2, 3, 1, 1, 1, 1]))
    assert StepSignals.from_plain(StepSignals(4, sig, {"a": 1.0}).to_plain()) == StepSignals(4, sig, {"a": 1.0})


def test_online_runs_have_their_own_keys_and_offline_keys_are_unchanged():
    m = SPACE.uniform()
    offline = RunSpec("s@1", "p", m, 3)
    assert "online" not in offline.to_dict()
    a, b = RunSpec("s@1", "p", m, 3, online="dump@x:y"), RunSpec("s@1", "p", m, 3, online="odm@x:y")
    assert len({offline.key, a.key, b.key}) == 3
    assert RunSpec.from_dict(a.to_dict()) == a


# -- an online run is its own request: run_online(OnlineRunSpec), never run(spec) ----------------------------
def _online_request(suite, strategy=None):
    from harness.training.online import OnlineMixture, OnlineRunSpec

    spec = RunSpec(suite.id, suite.protocol, suite.space.uniform(), 7, online="rotate@x:y")
    controller = OnlineMixture(Rotate(suite.space), suite.space, "rotate")
    return OnlineRunSpec(spec, controller, strategy if strategy is not None else {"name": "rotate", "seed": 0})


def test_an_online_request_needs_an_online_spec_and_the_strategy_described():
    from harness import suites
    from harness.training.online import OnlineMixture, OnlineRunSpec

    suite = suites.load("minimodo-tiny-live")
    request = _online_request(suite)
    assert request.spec.online == "rotate@x:y" and request.strategy["name"] == "rotate"
    offline = RunSpec(suite.id, suite.protocol, suite.space.uniform(), 7)
    with pytest.raises(ValueError, match="names none"):
        OnlineRunSpec(offline, OnlineMixture(Rotate(suite.space), suite.space, "rotate"), {"name": "rotate"})
    with pytest.raises(ValueError, match="no strategy description"):
        _online_request(suite, strategy={})


def test_the_runners_offline_entry_point_refuses_an_online_spec_before_training():
    from harness import suites
    from harness.runners.cpu import CpuRunner
    from harness.runners.gpu import GpuRunner
    from harness.runners.gpu_identity import bind_protocol

    live = suites.load("minimodo-tiny-live")
    with pytest.raises(ValueError, match="goes to the cpu runner's run_online"):
        CpuRunner(live).run(_online_request(live).spec)
    tiny = bind_protocol(suites.load("paper-protocol-tiny"), "gpu")
    with pytest.raises(ValueError, match="goes to the gpu runner's run_online"):
        GpuRunner(tiny).run(_online_request(tiny).spec)


def test_the_gpu_runners_online_record_carries_the_strategy_for_the_train_command():
    from harness import suites
    from harness.runners.gpu import GpuRunner
    from harness.runners.gpu_identity import bind_protocol

    tiny = bind_protocol(suites.load("paper-protocol-tiny"), "gpu")
    runner, request = GpuRunner(tiny), _online_request(tiny, {"name": "dump", "seed": 3, "params": {}})
    record = runner.online_run_record(request)
    assert record.pop("online") == {"name": "dump", "seed": 3, "params": {}}
    assert record == runner.run_record(request.spec) and record["spec"]["online"] == "rotate@x:y"
    assert "online" not in runner.run_record(request.spec)


def test_the_cpu_runners_threads_come_from_the_protocol_alone(monkeypatch):
    from harness import suites
    from harness.runners.cpu import protocol_config

    live = suites.load("minimodo-tiny-live")
    card_threads = int(live.card["protocol_config"].get("threads", 1))
    monkeypatch.setenv("MODOMODO_CPU_THREADS", str(card_threads + 3))  # the removed override changes nothing
    assert protocol_config(live).threads == card_threads


# -- real GRPO with weights that change as it trains -------------------------------------------------------
class Rotate:
    """A test strategy: one-hot on domain (step mod 5) after every step."""

    def __init__(self, space):
        self.space = space

    def start(self):
        return self.space.mixture({self.space.datasets[0]: 1.0})

    def update(self, signals):
        return self.space.mixture({self.space.datasets[signals.step % self.space.dim]: 1.0})

    def close(self):
        pass


def _smoke_cfg(steps=6):
    from harness.training.config import ProtocolConfig

    return ProtocolConfig.from_dict({"preset": "smoke", "steps": steps})


def test_a_real_run_draws_each_step_by_the_weights_set_two_steps_before():
    from harness.training import train_and_evaluate_online
    from harness.training.online import OnlineMixture

    cfg = _smoke_cfg(6)
    space = MixtureSpace(tuple(cfg.train_domains))
    c = OnlineMixture(Rotate(space), space, "rotate")
    res = train_and_evaluate_online(cfg, c, 1)
    rec = res.online
    assert rec["steps"] == [1, 2, 3, 4, 5, 6] and rec["draw_lag_steps"] == 2
    assert rec["drawn_after_step"] == [0, 0, 1, 2, 3, 4]  # measured by the sampler at each draw
    prompts = np.array(rec["signals"]["prompts"])
    assert prompts.sum(axis=1).tolist() == [cfg.prompts_per_step] * 6
    # steps 1 and 2: start() (domain 0); step t >= 3: the one-hot returned after step t - 2, domain (t - 2) mod 5
    expected = [0, 0] + [(t - 2) % 5 for t in range(3, 7)]
    assert [int(np.argmax(p)) for p in prompts] == expected and (prompts.max(axis=1) == cfg.prompts_per_step).all()
    assert [int(np.argmax(w)) for w in rec["weights"]] == expected
    assert 0 < res.timings["online"] < res.timings["train"] and 0 <= res.scores["Out_Score"] <= 1


def test_a_real_online_run_is_deterministic_and_its_record_complete():
    from harness.training import train_and_evaluate_online
    from harness.training.online import OnlineMixture

    cfg = _smoke_cfg(5)
    space = MixtureSpace(tuple(cfg.train_domains))
    runs = []
    for _ in range(2):
        h = InProcessStrategy(strategies.get("dump"), space, 0, {}, 60)
        runs.append(train_and_evaluate_online(cfg, OnlineMixture(h, space, "dump"), 2))
    a, b = runs
    assert a.scores == b.scores
    for k in ("weights", "next", "signals", "start", "steps"):
        assert a.online[k] == b.online[k], k
    assert set(a.online["signals"]) == {
        "prompts",
        "mean_reward",
        "mean_abs_advantage",
        "reward_variance",
        "frac_zero_std",
    }
    assert a.online["next"][0] != a.online["start"]  # dump moved the weights after the first step


def _smoke_suite(folder: Path, steps=6) -> Path:
    card = yaml.safe_load((ROOT / "baselines" / "minimodo-tiny-live" / "card.yaml").read_text())
    card.update(name="minimodo-online-smoke", protocol_config={"preset": "smoke", "steps": steps}, oracle={"seeds": 1})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "card.yaml").write_text(yaml.safe_dump(card))
    return folder


@pytest.fixture
def online_env(tmp_path):
    return {"MODOMODO_ORACLE_STORE": str(tmp_path / "oracle"), "OMP_NUM_THREADS": "1"}


def test_bench_online_track_end_to_end_with_a_raising_and_a_sandboxed_strategy(run_cli, tmp_path, online_env):
    suite = _smoke_suite(tmp_path / "suite")
    raiser = tmp_path / "raiser.py"
    raiser.write_text(RAISER)
    out = tmp_path / "b"
    proc = run_cli(
        "bench",
        "--suite",
        suite,
        "--track",
        "online",
        "--runner",
        "cpu",
        "--strategy",
        f"constant,dump,user-raiser,{USER_NAME}",
        "--strategy-file",
        raiser,
        "--strategy-file",
        USER_PATH,
        "--seeds",
        "2",
        "--out",
        out,
        "--quiet",
        env=online_env,
        timeout=600,
        codes=(1,),
    )
    s = pd.read_csv(out / "summary.csv").set_index(["strategy", "seed"])
    assert (s["track"] == "online").all() and (s["budget"] == 1).all()
    assert (s.loc["user-raiser", "status"] == "failed").all()
    reason = s.loc[("user-raiser", 0), "reason"]
    assert reason.startswith("online strategy update raised") and "bug in the user's update" in reason
    for name in ("constant", "dump", USER_NAME):  # the raiser failed its studies only
        assert (s.loc[name, "status"] == "ok").all(), name
        assert ((s.loc[name, "cost_used"] > 1) & (s.loc[name, "cost_used"] < 1.5)).all()
    sandboxed = s.loc[USER_NAME, "sandboxed"].tolist()
    assert sandboxed[0] in ("yes", "no")  # the file's strategy ran in its sandbox (yes where bwrap works)
    if os.environ.get("MODOMODO_REQUIRE_SANDBOX_TESTS"):
        assert sandboxed == ["yes", "yes"]
    steps = pd.read_csv(out / "online.csv")
    assert (
        set(steps["strategy"]) == {"constant", "dump", USER_NAME}
        and steps.groupby(["strategy", "seed"]).size().eq(6).all()
    )
    const = steps[steps.strategy == "constant"]
    assert np.allclose(const[[c for c in steps.columns if c.startswith("w:")]].to_numpy(), 0.2)
    runs = pd.read_csv(out / "online_runs.csv")
    assert {"In_Score", "Out_Score", "t_online"} <= set(runs.columns)
    assert "online track" in proc.stdout and "vs constant (paired)" in proc.stdout
    # the same training seeds for every strategy at a study seed: a paired design
    store = list((out / "store" / "runs").rglob("*.json"))
    seeds = {}
    for f in store:
        spec = json.loads(f.read_text())["spec"]
        seeds.setdefault(spec["online"].split("@")[0], set()).add(spec["seed"])
    assert len({frozenset(v) for v in seeds.values()}) == 1


@pytest.mark.slow
def test_a_killed_online_bench_resumes_with_nothing_lost(tmp_path, online_env):
    suite = _smoke_suite(tmp_path / "suite", steps=8)
    out = tmp_path / "b"
    args = [
        sys.executable,
        "-m",
        "harness.cli",
        "bench",
        "--suite",
        str(suite),
        "--track",
        "online",
        "--runner",
        "cpu",
        "--strategy",
        "constant,odm",
        "--seeds",
        "3",
        "--out",
        str(out),
        "--quiet",
    ]
    env = {**os.environ, **online_env}
    proc = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    studies = out / "store" / "studies"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(studies.rglob("*.json"))) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = {f.name for f in studies.rglob("*.json")}
    runs_before = {f.name: f.read_bytes() for f in (out / "store" / "runs").rglob("*.json")}
    assert len(done) >= 2 and len(runs_before) >= 2
    again = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "6 studies" in again.stderr and f"({len(done)} already done)" in again.stderr
    executed = int(again.stderr.split("runs executed: ")[1].split(",")[0])
    assert executed <= 6 - len(done)  # nothing finished before the kill was trained again
    after = {f.name: f.read_bytes() for f in (out / "store" / "runs").rglob("*.json")}
    assert all(after[k] == v for k, v in runs_before.items())
    assert len(pd.read_csv(out / "summary.csv")) == 6 and (pd.read_csv(out / "summary.csv")["status"] == "ok").all()


def test_online_track_refusals_are_one_line(run_cli, tmp_path, online_env):
    suite = _smoke_suite(tmp_path / "suite")
    cases = [
        (
            ["--suite", suite, "--track", "online", "--runner", "cpu", "--strategy", "random"],
            "strategy 'random' is an offline strategy; the online track runs online strategies",
        ),
        (["--suite", "minimodo-tiny", "--strategy", "dump"], "strategy 'dump' is an online strategy"),
        (
            ["--suite", "minimodo-tiny", "--track", "online", "--strategy", "dump"],
            "does not offer the online track: a replay suite does not train",
        ),
        (["--suite", suite, "--track", "online", "--strategy", "dump"], "use --runner cpu"),
        (
            ["--suite", suite, "--track", "online", "--runner", "cpu", "--budget", "4", "--strategy", "dump"],
            "its budget is 1 (got --budget 4)",
        ),
        (
            [
                "--suite",
                suite,
                "--track",
                "online",
                "--runner",
                "cpu",
                "--executor",
                "submitit-local",
                "--strategy",
                "dump",
            ],
            "the online track runs on the local executor only",
        ),
    ]
    for extra, message in cases:
        proc = run_cli("bench", *extra, "--seeds", "1", "--out", tmp_path / "o", "--quiet", check=False, env=online_env)
        assert proc.returncode == 2 and message in proc.stderr, (extra, proc.stderr)
        assert "Traceback" not in proc.stderr


def test_an_online_strategy_returning_garbage_fails_its_run_with_the_reason():
    from harness.training.online import OnlineMixture, OnlineStrategyFailed

    class Bad(Rotate):
        def update(self, signals):
            return {"a": 1.0}

    space = MixtureSpace(("a", "b"))
    c = OnlineMixture(Bad(space), space, "bad")
    c.start()
    c.capture(["a"], [1, 1], [0, 0], 2)
    with pytest.raises(OnlineStrategyFailed, match="returned dict .* not a Mixture"):
        c.after_step(1)
    c2 = OnlineMixture(type("Neg", (Rotate,), {"start": lambda self: Mixture({"zz": 1.0})})(space), space, "neg")
    with pytest.raises(OnlineStrategyFailed, match="unknown dataset 'zz'"):
        c2.start()


def test_the_strategy_listing_names_each_kind(run_cli):
    out = run_cli("strategies").stdout.splitlines()
    kinds = {line.split()[0]: line.split()[1] for line in out}
    assert kinds["dump"] == kinds["odm"] == kinds["aioli"] == kinds["constant"] == "online"
    assert kinds["random"] == "offline"
