"""`modomodo verify`: does a recorded suite still reproduce? Re-run some of its (mixture, seed) pairs.

A recorded suite (`suite from-sweep`) names the live suite its runs came from (`protocol.recorded_from`)
and that suite's protocol hash. `verify` re-runs N recorded pairs with the live suite's protocol,
here and now, and compares each new value of the objective with the recorded one:

- **bit for bit**: every score of the re-run equals the recorded one (to the 15 significant digits
  runs.csv keeps). Expected only on the same base weights, package versions and CPU capability
  (`torch.backends.cpu.get_cpu_capability()`: the SIMD kernels torch dispatches to; AVX2 and
  AVX-512 kernels round differently, and a tiny model trained 200 steps amplifies that).
- **in distribution**: otherwise the re-run should still look like one more seed of its mixture.
  Per run, z = (new - mean) / sd over that mixture's recorded seeds (n of them, sd with ddof 1).
  The stated test: under "the re-run is one more independent draw from the mixture's seed
  distribution" (normal), t = (new - mean) / (sd * sqrt(1 + 1/n)) follows Student's t with n - 1
  degrees of freedom (the prediction interval of a new observation); each run gives a two-sided
  p-value and Fisher's method combines them (-2 * sum(log p) ~ chi-squared with 2N degrees of
  freedom). The re-runs are called consistent with the recording when the combined p >= 0.05.

Which pairs: N mixtures spread evenly over the sweep's fixed design (uniform first), the k-th pair
on its mixture's k-th recorded seed (so uniform with seed 0 comes first, the pair issue 18 tried by
hand). Nothing is written to any store: a re-run on another machine must not mix into the record.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from harness.spec import RunResult, RunSpec

LEVEL = 0.05  # the combined p-value below which the re-runs are called inconsistent with the recording
CSV_DIGITS = 15  # runs.csv keeps %.15g (harness.factory.importer)


class VerifyError(ValueError):
    """A suite that cannot be verified (not recorded, its live suite missing), named with what would do."""


@dataclass
class Rerun:
    mixture: dict[str, float]
    seed: int
    recorded: float
    new: float | None
    mean: float
    sd: float
    seeds: int
    z: float | None = None
    t: float | None = None
    p: float | None = None
    bit_for_bit: bool = False
    scores_differing: list[str] = field(default_factory=list)
    status: str = "ok"
    reason: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None


@dataclass
class VerifyReport:
    suite: str
    live: str
    metric: str
    runner: str
    protocol_recorded: str
    protocol_now: str
    reruns: list[Rerun]
    recorded_provenance: dict[str, Any]
    combined_p: float | None = None
    consistent: bool | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _same(a: float, b: float) -> bool:
    return float(f"{a:.{CSV_DIGITS}g}") == float(f"{b:.{CSV_DIGITS}g}")


def recorded_pairs(suite, live, n: int) -> list[tuple[Any, int]]:
    """N (mixture, seed) pairs of the recording, spread over the design (see the module docstring)."""
    from harness.factory.sweep import design

    mixtures = list(suite.recorded)
    try:  # the sweep's design order (uniform, leave-one-out, single, Dirichlet), when the record follows it
        order = [m for m in (live.space.validate(x) for x in design(live.space, len(mixtures))) if m in suite.recorded]
        if len(order) == len(mixtures):
            mixtures = order
    except ValueError:
        pass
    seeds_of = _seeds_by_mixture(suite)
    if n <= len(mixtures):  # one pair per mixture, spread over the design, the k-th on its k-th seed
        picked = [mixtures[(k * len(mixtures)) // n] for k in range(n)]
        return [(m, seeds_of[m][k % len(seeds_of[m])]) for k, m in enumerate(picked)]
    depth = max(len(v) for v in seeds_of.values())  # more pairs than mixtures: every mixture, seed by seed
    pairs = [(m, seeds_of[m][d]) for d in range(depth) for m in mixtures if d < len(seeds_of[m])]
    return pairs[:n]


def _seeds_by_mixture(suite) -> dict[Any, list[int]]:
    if not suite.seed_column:
        raise VerifyError(f"suite {suite.name!r} has no seed column: its rows cannot be re-run seed by seed")
    W = suite.table[[suite.weight_columns[d] for d in suite.space.datasets]].to_numpy(float)
    out: dict[Any, list[int]] = {}
    for w, s in zip(W, suite.table[suite.seed_column].to_numpy()):
        out.setdefault(suite.space.from_vector(w, normalize=True), []).append(int(s))
    return {m: sorted(v) for m, v in out.items()}


def _recorded_row(suite, mixture, seed: int) -> dict[str, float]:
    W = suite.table[[suite.weight_columns[d] for d in suite.space.datasets]].to_numpy(float)
    seeds = suite.table[suite.seed_column].to_numpy()
    for i, (w, s) in enumerate(zip(W, seeds)):
        if int(s) == seed and suite.space.from_vector(w, normalize=True) == mixture:
            return {c: float(suite.table[c].iloc[i]) for c in suite.score_columns}
    raise VerifyError(f"no recorded row for {mixture} seed {seed}")  # pragma: no cover - pairs come from the table


def load_pair(name: str, live_ref: str | None = None):
    """(recorded suite, its live suite, the card's protocol block). `live_ref` (a name or folder)
    stands in for the card's `protocol.recorded_from` where that name is not registered here."""
    from harness import suites
    from harness.suites.replay import ReplaySuite

    suite = suites.load(name)
    protocol = suite.card.get("protocol") if isinstance(suite.card.get("protocol"), dict) else {}
    if not isinstance(suite, ReplaySuite) or not protocol.get("recorded_from"):
        recorded = sorted(n for n, f in suites.registered().items() if _is_recorded(f))
        raise VerifyError(
            f"suite {suite.name!r} is not a recorded suite (its card has no protocol.recorded_from, "
            f"the live suite its runs came from); recorded suites: {', '.join(recorded) or 'none'}"
        )
    try:
        live = suites.load(live_ref or protocol["recorded_from"])
    except suites.SuiteError as e:
        raise VerifyError(
            f"{e}; {suite.name!r} was recorded from {protocol['recorded_from']!r}: register it "
            f"($MODOMODO_SUITE_PATH) or pass --live FOLDER"
        ) from None
    if live.name != protocol["recorded_from"]:
        raise VerifyError(
            f"--live {live_ref!r} is suite {live.name!r}, but {suite.name!r} was recorded from "
            f"{protocol['recorded_from']!r}"
        )
    return suite, live, protocol


def _is_recorded(folder) -> bool:
    import yaml

    try:
        card = yaml.safe_load((folder / "card.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(card.get("protocol"), dict) and bool(card["protocol"].get("recorded_from"))


MAX_RUNS = 1000  # re-runs per verify (each a real training run)


def verify(
    name: str, runs: int = 3, runner: str | None = None, workers: int = 1, on_rerun=None, live: str | None = None
) -> VerifyReport:
    """Re-run `runs` recorded pairs of the recorded suite `name` and test them against the recording."""
    from scipy import stats

    from harness.runners.executor import make_executor
    from harness.runners.slurm import PilotRunTask, run_pilot

    if runs < 1:
        raise VerifyError(f"--runs must be at least 1, got {runs}")
    if runs > MAX_RUNS:
        raise VerifyError(
            f"--runs {runs} is more re-runs than verify does at once (at most {MAX_RUNS}; each is a real training run)"
        )
    suite, live, protocol = load_pair(name, live)
    if runner == "replay" and live.kind == "live":
        recorded_with = protocol.get("runner") or live.card.get("runner") or "cpu"
        raise VerifyError(
            f"--runner replay cannot re-run {suite.name!r}: its runs come from the live suite "
            f"{live.name!r}, which only a training runner can re-run (it was recorded with "
            f"--runner {recorded_with}; leave --runner out to use it)"
        )
    if runs > len(suite.table):
        raise VerifyError(
            f"--runs {runs}: {suite.name!r} records {len(suite.table)} (mixture, seed) pairs; give at most that many"
        )
    runner = runner or protocol.get("runner") or live.card.get("runner")
    if not runner:
        raise VerifyError(f"neither {suite.name!r} nor {live.name!r} names a runner; pass --runner (cpu, gpu, replay)")
    metric = suite.metric
    j = suite.score_columns.index(metric)
    report = VerifyReport(
        suite.name,
        live.id,
        metric,
        runner,
        str(protocol.get("protocol_hash", "")),
        live.protocol,
        [],
        {
            k: suite.card.get("sweep_provenance", {}).get(k)
            for k in ("versions", "base_weights_sha256", "cpu_capability")
        },
    )
    if report.protocol_recorded and report.protocol_recorded != live.protocol:
        report.notes.append(
            f"{live.name}'s protocol hash is {live.protocol} but {suite.name} was recorded with "
            f"{report.protocol_recorded}: the live card changed since, so the re-runs test the changed "
            f"protocol"
        )
    pairs = recorded_pairs(suite, live, runs)
    tasks = [PilotRunTask(runner, str(live.path), RunSpec(live.id, live.protocol, m, s).to_dict()) for m, s in pairs]
    pool = make_executor(min(max(1, workers), len(tasks)))
    try:
        for task, raw in pool.imap(run_pilot, tasks):
            result = RunResult.from_dict(raw)
            m = live.space.mixture(task.spec["mixture"])
            seed = int(task.spec["seed"])
            rec_row = _recorded_row(suite, m, seed)
            values = suite.recorded[m][:, j].astype(float)
            n = len(values)
            mean, sd = float(values.mean()), float(values.std(ddof=1)) if n > 1 else float("nan")
            rr = Rerun(
                mixture=m.as_dict(),
                seed=seed,
                recorded=rec_row[metric],
                new=result.value,
                mean=mean,
                sd=sd,
                seeds=n,
                status=result.status,
                reason=result.reason,
                provenance={
                    k: result.provenance.get(k)
                    for k in (
                        "cpu_capability",
                        "base_weights_sha256",
                        "base_model",
                        "config_fingerprint",
                        "torch_threads",
                        "git_sha",
                    )
                },
                seconds=(result.cost or {}).get("seconds"),
            )
            if result.ok and rr.new is not None:
                rr.scores_differing = [
                    c
                    for c in suite.score_columns
                    if c in result.scores and not _same(float(result.scores[c]), rec_row[c])
                ]
                rr.scores_differing += [c for c in suite.score_columns if c not in result.scores]
                rr.bit_for_bit = not rr.scores_differing
                if n > 1 and sd > 0:
                    rr.z = (rr.new - mean) / sd
                    rr.t = (rr.new - mean) / (sd * math.sqrt(1 + 1 / n))
                    rr.p = float(2 * stats.t.sf(abs(rr.t), n - 1))
            report.reruns.append(rr)
            if on_rerun:
                on_rerun(rr, metric)
    finally:
        pool.close()
    ps = [r.p for r in report.reruns if r.p is not None]
    if ps:
        chi2 = -2.0 * float(np.sum(np.log(np.clip(ps, 1e-300, 1.0))))
        report.combined_p = float(stats.chi2.sf(chi2, 2 * len(ps)))
        report.consistent = report.combined_p >= LEVEL and all(r.status == "ok" for r in report.reruns)
    elif report.reruns and all(r.bit_for_bit for r in report.reruns):
        report.consistent = True  # noiseless recording: every re-run equal is the only consistent outcome
    else:
        report.consistent = False
    return report


def format_rerun(r: Rerun, metric: str) -> str:
    mix = ",".join(f"{k}={v:g}" for k, v in r.mixture.items())
    if r.status != "ok" or r.new is None:
        return f"  {mix} seed {r.seed}: FAILED: {r.reason}"
    z = "n/a" if r.z is None else f"{r.z:+.2f}"
    p = "n/a" if r.p is None else f"{r.p:.3f}"
    same = "bit for bit" if r.bit_for_bit else f"differs ({len(r.scores_differing)} scores)"
    secs = f", {r.seconds:.0f} s" if r.seconds else ""
    return (
        f"  {mix} seed {r.seed}: {metric} new {r.new:.6g} recorded {r.recorded:.6g} (diff {r.new - r.recorded:+.4g}); "
        f"mixture's {r.seeds} seeds {r.mean:.4g} ± {r.sd:.3g}: z {z}, p {p}; {same}{secs}"
    )


def format_report(rep: VerifyReport) -> str:
    lines = [
        f"verify {rep.suite}: {len(rep.reruns)} recorded (mixture, seed) pairs re-run with {rep.live} "
        f"(protocol {rep.protocol_now}), runner {rep.runner}, objective {rep.metric}"
    ]
    lines += [f"  note: {n}" for n in rep.notes]
    lines += [format_rerun(r, rep.metric) for r in rep.reruns]
    ok = [r for r in rep.reruns if r.status == "ok" and r.new is not None]
    lines.append(
        f"bit for bit: {sum(r.bit_for_bit for r in ok)} of {len(rep.reruns)} re-runs (every score equal to "
        f"the recorded one to {CSV_DIGITS} significant digits)"
    )
    caps = sorted({str(r.provenance.get("cpu_capability")) for r in ok})
    weights = sorted({str(r.provenance.get("base_weights_sha256"))[:16] for r in ok})
    rec = rep.recorded_provenance or {}
    lines.append(
        f"this machine: cpu capability {', '.join(caps) or '?'}, base weights sha256 {', '.join(weights) or '?'}"
        f"; the recording: cpu capability {_counts(rec.get('cpu_capability'))}, base weights "
        f"{_counts(rec.get('base_weights_sha256'), 16)}"
    )
    if rep.combined_p is not None:
        lines.append(
            f"test: each re-run as one more draw of its mixture's seeds, t = (new - mean)/(sd*sqrt(1+1/n)) "
            f"~ t(n-1), two-sided p per run, Fisher's combination over {sum(r.p is not None for r in ok)} runs: "
            f"p = {rep.combined_p:.3g} -> {'CONSISTENT' if rep.consistent else 'NOT consistent'} with the "
            f"recording at level {LEVEL:g}"
        )
    else:
        lines.append(
            f"test: no seed spread to test against -> "
            f"{'CONSISTENT (every re-run equal)' if rep.consistent else 'NOT consistent'}"
        )
    return "\n".join(lines)


def _counts(d, width: int | None = None) -> str:
    if not d:
        return "not recorded"
    return ", ".join(f"{(str(k)[:width] if width and k != 'not recorded' else k)} ({v} runs)" for k, v in d.items())
