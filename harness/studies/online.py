"""The online study: one training run whose domain weights an online strategy sets step by step.

The `online` track of a live suite (what the track offers, admits and costs: harness/suites/online_track.py).
Where an offline study spends pilot runs and has its recommendation scored, an online study *is* one run of the suite's protocol: the strategy
starts it (`start`), then updates the weights after every step from the rollouts' per-domain signals
(harness/training/online.py), and the trained model is evaluated with the suite's protocol. Its score
is that run's metric, so it compares with an offline study's recommendation: both are "a model trained
under the protocol". Its compute is the run itself plus the measured overhead of the online machinery,
in run-equivalents (`online_track.cost`).

The training seed is fixed by the study seed alone (`derive_seed(seed, "online")`), so every online
strategy, and the `constant` control, train on the same seeds: differences between them are paired.
The run goes through the result store keyed by (suite, protocol, start weights, seed, strategy
identity), so a killed bench resumes with every finished run served from the store.
"""

from __future__ import annotations

import hashlib
import time

from harness.suites import online_track
from harness.sandbox.isolation import make_strategy
from harness.spec import STATUS_FAILED, RunResult, RunSpec, canonical_json, derive_seed
from harness.sandbox.protocol import short_error
from harness.studies.study import StudyOutcome, run_through_store


def online_identity(name: str, fingerprint: str, params: dict) -> str:
    """What names an online strategy in a run's key: its name, code fingerprint and parameters."""
    p = hashlib.sha256(canonical_json(params or {}).encode()).hexdigest()[:12]
    return f"{name}@{fingerprint}:{p}"


def online_run_seed(study_seed: int) -> int:
    """The training seed of an online study: the same for every strategy at a study seed (paired)."""
    return derive_seed(int(study_seed), "online")


class OnlineStudy:
    def __init__(
        self,
        judge,
        strategy_cls,
        seed: int,
        runner,
        store=None,
        strategy_params=None,
        isolation: str | None = None,
        timeout_s="default",
        fingerprint: str = "",
    ):
        if judge.track != online_track.TRACK:
            raise ValueError(f"an online study runs in the online track, not {judge.track!r}")
        online_track.check_runner(runner)
        self.suite, self.strategy_cls, self.seed = judge, strategy_cls, int(seed)
        self.runner, self.store, self.params = runner, store, dict(strategy_params or {})
        self.isolation, self.timeout_s = isolation, timeout_s
        self.fingerprint = fingerprint or "unversioned"

    def run(self) -> StudyOutcome:
        suite = self.suite
        name = getattr(self.strategy_cls, "name", "?")
        out = StudyOutcome(
            suite.name,
            name,
            1,
            self.seed,
            track="online",
            uniform_score=suite.uniform_score,
            best_known=suite.best_known,
            worst_known=suite.worst_known,
            protocol=suite.protocol,
        )
        t0 = time.perf_counter()
        handle = None
        try:
            try:
                handle = make_strategy(
                    self.strategy_cls, suite.space, self.seed, self.params, self.isolation, self.timeout_s
                )
            except Exception as e:
                return self._fail(out, f"strategy could not be built: {short_error(e)}")
            from harness.training.online import OnlineMixture, OnlineRunSpec, OnlineStrategyFailed

            controller = OnlineMixture(handle, suite.space, name)
            try:
                first = controller.start()
            except OnlineStrategyFailed as e:
                return self._fail(out, f"online strategy {e}")
            spec = RunSpec(
                suite.id,
                suite.protocol,
                first,
                online_run_seed(self.seed),
                1.0,
                online_identity(name, self.fingerprint, self.params),
            )
            # the strategy as plain data too: a runner that trains in another process (the gpu runner's job)
            # rebuilds it there
            described = strategy_spec(self.strategy_cls, self.seed, self.params, self.timeout_s)
            result = self._run(OnlineRunSpec(spec, controller, described), out)
            out.runs_used, out.runs_failed = 1, 0 if result.ok else 1
            out.trajectory.append(
                {
                    "step": 0,
                    "mixture": first.as_dict(),
                    "value": result.value,
                    "source": result.source,
                    "status": result.status,
                    "best_so_far": result.value,
                    "run_key": spec.key,
                    "fidelity": 1.0,
                    "cost": 1.0,
                    "spent": 1.0,
                }
            )
            if not result.ok:
                return self._fail(out, result.reason)
            score = result.value
            if score is None:
                return self._fail(out, f"the run has no finite {suite.metric}")
            final = result.online.get("next") or []
            domains = result.online.get("domains") or list(suite.space.datasets)
            out.recommended = dict(zip(domains, final[-1])) if final else first.as_dict()
            out.score, out.score_source = float(score), result.source or "trained"
            out.regret, out.normalized_regret = suite.regret(out.score)
            out.cost_used = online_track.cost(result)
            rec = result.online
            out.online = {
                "domains": domains,
                "start": rec.get("start"),
                "steps": rec.get("steps", []),
                "weights": rec.get("weights", []),
                "prompts": (rec.get("signals") or {}).get("prompts", []),
                "t_online": float(result.cost.get("t_online", 0.0)),
                "t_online_strategy": float(result.cost.get("t_online_strategy", 0.0)),
                "t_train": float(result.cost.get("t_train", 0.0)),
                "s_per_step": float(result.cost.get("t_s_per_step", 0.0)),
                # every score the run measured (in-domain and out-of-domain, per benchmark)
                "scores": {k: float(v) for k, v in result.scores.items() if not k.startswith(("train/", "format/"))},
            }
            return out
        finally:
            if handle is not None:
                handle.close()
            out.wall_s = round(time.perf_counter() - t0, 6)

    def _fail(self, out: StudyOutcome, reason: str) -> StudyOutcome:
        out.status, out.reason = STATUS_FAILED, reason
        return out

    def _run(self, request, out: StudyOutcome) -> RunResult:
        """The run of `request` (an OnlineRunSpec), served from the store when it is there."""
        return run_through_store(lambda: self.runner.run_online(request), request.spec, self.store, out)


def strategy_spec(cls, seed: int, params: dict, timeout_s="default") -> dict:
    """An online strategy as plain data, for a training process elsewhere (`build_online` rebuilds it): a
    built-in by name; a user's file with its source, so that it runs in that process's sandbox."""
    from harness.sandbox.isolation import default_timeout

    spec = {
        "name": getattr(cls, "name", ""),
        "seed": int(seed),
        "params": dict(params or {}),
        "timeout_s": default_timeout() if timeout_s == "default" else timeout_s,
    }
    src = getattr(cls, "source", None)
    if src is not None and getattr(src, "text", None) is not None:
        spec["source"] = {"path": src.path, "text": src.text, "sha256": src.sha256, "class": cls.source_class}
    return spec


def build_online(spec: dict, space):
    """The strategy handle `strategy_spec` describes, built in this process (a file's in its sandbox)."""
    import strategies
    from harness.sandbox.isolation import InProcessStrategy
    from harness.sandbox.proxy import SandboxedStrategy
    from harness.sandbox.submission import FileSource

    timeout = spec.get("timeout_s")
    if spec.get("source"):
        s = spec["source"]
        src = FileSource(s["path"], s["text"], s["sha256"])
        return SandboxedStrategy(
            spec["name"], space, spec["seed"], spec["params"], timeout, source=src, class_name=s["class"]
        )
    return InProcessStrategy(strategies.get(spec["name"]), space, spec["seed"], spec["params"], timeout)
