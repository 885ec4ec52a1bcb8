"""Sweeps (harness/factory/sweep.py, `modomodo sweep`) and recorded suites (harness/factory/export.py,
`modomodo suite from-sweep`), on the synthetic suite through the replay runner: the same code path
as a cpu-runner sweep, at a millisecond per run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from harness import suites
from harness.cli import main
from harness.factory.export import SweepError, export_suite, signal_to_noise, sweep_table
from harness.store import ResultStore
from harness.factory.sweep import design, dirichlet_mixtures, plan, run_sweep
from strategies.base import seed_designs

BOWL = "synth-bowl-5"


def test_design_starts_with_the_seed_designs_then_distinct_exact_dirichlet_draws():
    s = suites.load(BOWL)
    mixes = design(s.space, 24, seed=0)
    assert len(mixes) == 24
    assert mixes[:11] == seed_designs(s.space)
    assert len({m.key() for m in mixes}) == 24
    for m in mixes[11:]:
        v = s.space.to_vector(m)
        assert abs(v.sum() - 1.0) < 1e-12
        assert np.allclose(v, np.round(v, 3))
    assert design(s.space, 24, seed=0) == mixes  # deterministic
    assert design(s.space, 24, seed=1)[11:] != mixes[11:]
    assert design(s.space, 5) == seed_designs(s.space)[:5]
    with pytest.raises(ValueError, match="at least 1 mixture"):
        design(s.space, 0)


def test_dirichlet_concentration_spreads_or_centres_the_draws():
    s = suites.load(BOWL)
    spread = np.array([s.space.to_vector(m) for m in dirichlet_mixtures(s.space, 200, alpha=0.3)])
    central = np.array([s.space.to_vector(m) for m in dirichlet_mixtures(s.space, 200, alpha=20.0)])
    assert spread.max(axis=1).mean() > central.max(axis=1).mean() + 0.3


def test_plan_is_seed_major():
    s = suites.load(BOWL)
    mixes = design(s.space, 3)
    specs = plan(s, mixes, [0, 1])
    assert [(sp.seed, sp.mixture) for sp in specs] == [
        (0, mixes[0]),
        (0, mixes[1]),
        (0, mixes[2]),
        (1, mixes[0]),
        (1, mixes[1]),
        (1, mixes[2]),
    ]


def test_sweep_stores_every_run_and_a_resumed_sweep_runs_only_the_missing_ones(tmp_path):
    s = suites.load(BOWL)
    specs = plan(s, design(s.space, 12), range(3))
    store = ResultStore(tmp_path / "store")
    # A sweep killed after some runs: its store holds a prefix of the plan.
    first = run_sweep(s, "replay", specs[:7], store, workers=1, progress=False)
    assert (first.ran, first.skipped, first.failed) == (7, 0, 0)
    before = {p.name: p.read_bytes() for p in (tmp_path / "store" / "runs").glob("*/*.json")}
    seen = []
    second = run_sweep(s, "replay", specs, store, workers=1, progress=False, on_result=seen.append)
    assert (second.ran, second.skipped) == (29, 7)
    assert {r.key for r in seen} == {sp.key for sp in specs[7:]}
    after = {p.name: p.read_bytes() for p in (tmp_path / "store" / "runs").glob("*/*.json")}
    assert len(after) == 36
    assert all(after[k] == v for k, v in before.items())  # nothing already stored was rewritten
    assert run_sweep(s, "replay", specs, store, workers=1, progress=False).ran == 0


def test_sweep_in_worker_processes_matches_the_in_process_sweep(tmp_path):
    s = suites.load(BOWL)
    specs = plan(s, design(s.space, 4), range(2))
    a, b = ResultStore(tmp_path / "a"), ResultStore(tmp_path / "b")
    run_sweep(s, "replay", specs, a, workers=1, progress=False)
    run_sweep(s, "replay", specs, b, workers=2, progress=False)
    assert {r.key: r.scores for r in a.results()} == {r.key: r.scores for r in b.results()}


def _groups_frame(means, sds, n, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i, (mu, sd) in enumerate(zip(means, sds)):
        noise = rng.normal(size=n)
        noise = (noise - noise.mean()) / noise.std(ddof=1) * sd  # exactly this sample sd
        rows += [{"a": i / 100, "b": 1 - i / 100, "seed": k, "m": mu + e} for k, e in enumerate(noise)]
    return pd.DataFrame(rows)


def test_signal_to_noise_follows_its_definition():
    """Groups with exact sample means and sds: F = n * var(means) / pooled variance by hand, checked
    against scipy.stats.f_oneway, and snr_mean = sqrt(F - 1)."""
    from scipy.stats import f_oneway

    means = [0.1, 0.2, 0.3, 0.4]
    df = _groups_frame(means, [0.02, 0.04, 0.02, 0.04], n=8)
    snr = signal_to_noise(df, ["a", "b"], "m")
    between = float(np.std(means, ddof=1))
    pooled = np.sqrt(np.mean(np.square([0.02, 0.04, 0.02, 0.04])))  # equal n: the mean of the variances
    F = 8 * between**2 / pooled**2
    assert F == pytest.approx(f_oneway(*[g["m"].to_numpy() for _, g in df.groupby("a")]).statistic, rel=1e-6)
    assert snr["between_mixture_sd"] == pytest.approx(between, rel=1e-4)
    assert snr["within_mixture_sd"] == pytest.approx(pooled, rel=1e-4)
    assert snr["snr_mean"] == pytest.approx(np.sqrt(F - 1), rel=1e-3)
    assert snr["snr_single"] == pytest.approx(np.sqrt(F - 1) / np.sqrt(8), rel=1e-3)
    assert snr["can_rank"] is True
    lo, hi = snr["snr_mean_ci"]
    assert lo < snr["snr_mean"] < hi
    noisy = signal_to_noise(_groups_frame(means, [0.5] * 4, n=8), ["a", "b"], "m")
    assert noisy["can_rank"] is False and noisy["snr_mean"] < 3


def test_signal_to_noise_needs_two_mixtures_with_repeated_seeds():
    df = _groups_frame([0.1, 0.2], [0.01, 0.01], n=1)
    with pytest.raises(SweepError, match="at least 2 mixtures with >= 2 seeds; found 0"):
        signal_to_noise(df, ["a", "b"], "m")


def test_export_writes_a_replay_suite_whose_runs_are_the_sweep_and_whose_oracle_is_the_seed_mean(tmp_path):
    s = suites.load(BOWL)
    store = ResultStore(tmp_path / "store")
    mixes = design(s.space, 24)
    run_sweep(s, "replay", plan(s, mixes, range(4)), store, workers=1, progress=False)
    folder = export_suite(store, s, "bowl-recorded", tmp_path / "bowl-recorded")
    card = yaml.safe_load((folder / "card.yaml").read_text())
    runs = pd.read_csv(folder / "runs.csv")
    assert len(runs) == 96 and runs.groupby([f"w_{d}" for d in s.space.datasets]).size().eq(4).all()
    assert card["seed_column"] == "seed" and card["kind"] == "replay"
    sig = card["signal"]["score"]
    assert sig["mixtures"] == 24 and sig["seeds_per_mixture"] == 4
    # the bowl's noise is N(0, 0.01) per run: the within-mixture sd must come out near it
    assert 0.006 < sig["within_mixture_sd"] < 0.014
    assert card["protocol"]["protocol_hash"] == s.protocol
    assert card["sweep_provenance"]["runs"] == 96
    rec = suites.load(folder)
    df = sweep_table(store, s)
    uniform = rec.space.uniform()
    uniform_runs = df[np.all([np.isclose(df[f"w_{d}"], 0.2) for d in s.space.datasets], axis=0)]["score"]
    assert len(uniform_runs) == 4
    assert rec.oracle(uniform) == (pytest.approx(uniform_runs.mean()), "recorded")
    seeds_seen = {rec.simulate(uniform, k)[0]["score"] for k in range(40)}
    assert all(np.isclose(uniform_runs, v, rtol=0, atol=1e-12).any() for v in seeds_seen)
    assert len(seeds_seen) > 1  # pilot runs draw different recorded seeds


def test_export_keeps_only_the_suites_protocol(tmp_path):
    s = suites.load(BOWL)
    other = suites.load("synth-corner-6")
    store = ResultStore(tmp_path / "store")
    run_sweep(s, "replay", plan(s, design(s.space, 3), range(2)), store, workers=1, progress=False)
    run_sweep(other, "replay", plan(other, design(other.space, 3), range(2)), store, workers=1, progress=False)
    assert len(sweep_table(store, s)) == 6
    with pytest.raises(SweepError, match="no successful runs of paper-qwen2vl-2b"):
        sweep_table(store, suites.load("paper-qwen2vl-2b"))


def test_cli_sweep_then_from_sweep_then_bench(tmp_path):
    r = CliRunner()
    store = tmp_path / "store"
    args = [
        "sweep",
        "--suite",
        BOWL,
        "--runner",
        "replay",
        "--mixtures",
        "12",
        "--seeds",
        "0-2",
        "--store",
        str(store),
        "--workers",
        "1",
        "--quiet",
    ]
    res = r.invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "12 mixtures x 3 seeds = 36 runs, 0 already" in res.output and "ran 36 (0 failed)" in res.output
    res = r.invoke(main, args)
    assert "36 already" in res.output and "ran 0" in res.output
    res = r.invoke(main, ["suite", "from-sweep", "--store", str(store), "--suite", BOWL, "--check"])
    assert res.exit_code == 0, res.output
    assert '"snr_mean"' in res.output and "36 runs, 12 mixtures" in res.output
    out = tmp_path / "rec"
    res = r.invoke(
        main, ["suite", "from-sweep", "--store", str(store), "--suite", BOWL, "--name", "rec", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    res = r.invoke(
        main,
        [
            "bench",
            "--suite",
            str(out),
            "--strategy",
            "uniform,random",
            "--budget",
            "4",
            "--seeds",
            "2",
            "--out",
            str(tmp_path / "b"),
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = pd.read_csv(tmp_path / "b" / "summary.csv")
    assert set(summary["status"]) == {"ok"} and len(summary) == 4


@pytest.mark.parametrize(
    "seeds, message", [("5-2", "range is empty"), ("a-b", "expected N-M"), ("1,x", "comma-separated integers")]
)
def test_cli_sweep_rejects_bad_seeds(tmp_path, seeds, message):
    res = CliRunner().invoke(
        main,
        ["sweep", "--suite", BOWL, "--runner", "replay", "--seeds", seeds, "--store", str(tmp_path / "s"), "--quiet"],
    )
    assert res.exit_code == 2 and message in res.output


def test_cli_from_sweep_names_a_missing_name_and_keeps_an_existing_folder(tmp_path):
    r = CliRunner()
    store = tmp_path / "store"
    r.invoke(
        main,
        [
            "sweep",
            "--suite",
            BOWL,
            "--runner",
            "replay",
            "--mixtures",
            "4",
            "--seeds",
            "0-1",
            "--store",
            str(store),
            "--workers",
            "1",
            "--quiet",
        ],
    )
    res = r.invoke(main, ["suite", "from-sweep", "--store", str(store), "--suite", BOWL])
    assert res.exit_code == 2 and "--name is required" in res.output
    out = tmp_path / "keep"
    out.mkdir()
    (out / "precious.txt").write_text("x")
    res = r.invoke(
        main, ["suite", "from-sweep", "--store", str(store), "--suite", BOWL, "--name", "k", "--out", str(out)]
    )
    assert res.exit_code == 2 and "--overwrite" in res.output
    assert (out / "precious.txt").read_text() == "x"


def test_dry_run_lists_the_design_without_running(tmp_path):
    res = CliRunner().invoke(
        main,
        [
            "sweep",
            "--suite",
            BOWL,
            "--runner",
            "replay",
            "--mixtures",
            "13",
            "--store",
            str(tmp_path / "s"),
            "--dry-run",
        ],
    )
    assert res.exit_code == 0
    assert len([ln for ln in res.output.splitlines() if ln[:3].strip().isdigit()]) == 13
    assert not list((tmp_path / "s" / "runs").glob("*/*.json"))


def test_leaderboard_shows_whether_a_recorded_suite_can_rank(tmp_path):
    """A quiet suite is shown with its SNR; a noisy one carries a 'cannot rank' warning."""
    from tests.conftest import write_synthetic_suite

    r = CliRunner()
    folders = []
    for name, noise in (("quiet", 0.001), ("noisy", 2.0)):
        live = write_synthetic_suite(tmp_path / f"{name}-live", kind="bowl", dim=3, noise=noise, name=f"{name}-live")
        s = suites.load(live)
        store = ResultStore(tmp_path / f"{name}-store")
        run_sweep(s, "replay", plan(s, design(s.space, 8), range(4)), store, workers=1, progress=False)
        folders.append(
            export_suite(store, s, f"{name}-rec", tmp_path / f"{name}-rec", signal_notes=f"<b>{name}</b> noise {noise}")
        )
    cards = [yaml.safe_load((f / "card.yaml").read_text()) for f in folders]
    assert cards[0]["signal"]["score"]["can_rank"] is True and cards[1]["signal"]["score"]["can_rank"] is False
    assert "CANNOT rank" in cards[1]["description"]
    args = [
        "bench",
        "--strategy",
        "uniform,random",
        "--budget",
        "4",
        "--seeds",
        "2",
        "--out",
        str(tmp_path / "b"),
        "--quiet",
    ]
    for f in folders:
        args += ["--suite", str(f)]
    assert r.invoke(main, args).exit_code == 0
    res = r.invoke(main, ["leaderboard", "render", "--results", str(tmp_path / "b"), "--out", str(tmp_path / "site")])
    assert res.exit_code == 0, res.output
    quiet = next((tmp_path / "site" / "suites").glob("quiet-rec*.html")).read_text()
    noisy = next((tmp_path / "site" / "suites").glob("noisy-rec*.html")).read_text()
    assert "Signal to noise" in quiet and 'id="cannot-rank"' not in quiet
    assert 'id="cannot-rank"' in noisy and "This suite cannot rank mixtures" in noisy
    assert "&lt;b&gt;noisy&lt;/b&gt; noise 2.0" in noisy  # the notes are shown, escaped
    # the SNR-versus-seeds picture: measured at 2 and 4 seeds, the target line, on both suite pages
    assert [c["seeds"] for c in cards[0]["signal"]["score"]["by_seeds"]] == [2, 4]
    for page, rec in ((quiet, "quiet-rec"), (noisy, "noisy-rec")):
        svg = next((tmp_path / "site" / "plots").glob(f"snr-{rec}*.svg")).read_text()
        assert "target 3" in svg and "seeds per mixture" in svg and f"plots/snr-{rec}" in page
    index = (tmp_path / "site" / "index.html").read_text()
    assert index.count("cannot rank (SNR") == 1  # the verdict line of noisy-rec, once
    assert "p (ρ = 0)" in index  # the rank correlation's p-value column
    assert 'id="corr-cannot-rank"' in index and index.count('class="cannot-rank-mark"') == 1  # noisy-rec, once
    assert 'class="cannot-rank-mark"' in quiet and 'class="cannot-rank-mark"' not in noisy  # the other suite
    table = r.invoke(main, ["leaderboard", "table", "--results", str(tmp_path / "b"), "--budget", "4"])
    assert table.exit_code == 0, table.output
    assert "**quiet-rec**: mean normalised regret [95% CI], 2 seeds" in table.output
    assert "| uniform | " in table.output and "| quiet-rec (" not in table.output
    assert "Rank correlation" in table.output and "| noisy-rec † | quiet-rec | 4 | 2 |" in table.output
    # each recorded suite's verdict under its table; the noisy one flagged in the correlations too
    assert table.output.count("this suite CANNOT rank mixtures") == 1
    assert (
        table.output.count("The judge: this suite can rank") == 1
    )  # what the cells support, never "signal, not noise"
    assert "† cannot rank mixtures" in table.output
    bad = r.invoke(main, ["leaderboard", "table", "--results", str(tmp_path / "b"), "--budget", "7"])
    assert bad.exit_code == 2 and "none of the budgets [7]" in bad.output


def test_sweep_through_submitit_jobs_matches_the_local_sweep(tmp_path):
    """`--executor submitit-local` runs each pair as a submitit job (the SLURM path, on this machine)."""
    s = suites.load(BOWL)
    specs = plan(s, design(s.space, 2), [0])
    local, jobs = ResultStore(tmp_path / "local"), ResultStore(tmp_path / "jobs")
    run_sweep(s, "replay", specs, local, workers=1, progress=False)
    rep = run_sweep(s, "replay", specs, jobs, progress=False, executor="submitit-local")
    assert (rep.ran, rep.failed) == (2, 0)
    assert {r.key: r.scores for r in jobs.results()} == {r.key: r.scores for r in local.results()}
    assert list((tmp_path / "jobs" / "jobs" / "ledger").glob("*"))  # the job ledger lives beside the store
    assert run_sweep(s, "replay", specs, jobs, progress=False, executor="submitit-local").ran == 0


def test_in_domain_scores_named_like_datasets_do_not_overwrite_the_weights(tmp_path):
    """MiniModo's in-domain benchmarks carry their dataset's name: the weights must stay the mixture's."""
    from harness.spec import STATUS_OK, RunResult, RunSpec

    s = suites.load("minimodo-tiny-live")
    store = ResultStore(tmp_path / "store")
    rng = np.random.default_rng(0)
    mixes = design(s.space, 12)
    for m in mixes:
        for seed in range(3):
            spec = RunSpec(s.id, s.protocol, m, seed)
            scores = {c: float(rng.uniform()) for c in s.card["score_columns"]}
            store.put(RunResult(spec.key, spec.to_dict(), STATUS_OK, scores, s.metric, "trained", {"seconds": 60.0}))
    folder = export_suite(store, s, "mt", tmp_path / "mt")
    runs = pd.read_csv(folder / "runs.csv")
    weights = runs[[f"w_{d}" for d in s.space.datasets]].to_numpy()
    assert {tuple(np.round(w, 9)) for w in weights} == {tuple(np.round(s.space.to_vector(m), 9)) for m in mixes}
    assert "grounding" in runs.columns and not np.allclose(runs["grounding"], runs["w_grounding"])
    rec = suites.load(folder)
    assert rec.space.datasets == s.space.datasets and len(rec.recorded) == 12
    card = yaml.safe_load((folder / "card.yaml").read_text())
    assert card["protocol"]["base_model"] == "tiny-h64-cur"
    assert card["protocol"]["protocol_config"]["beta"] == 0.15
    assert card["sweep_provenance"]["cpu_seconds_per_run_median"] == 60.0
    assert set(card["signal"]) == {"Out_Score", "In_Score"} and card["metric"] == "Out_Score"
    inner = export_suite(store, s, "mt-in", tmp_path / "mt-in", metric="In_Score")
    card = yaml.safe_load((inner / "card.yaml").read_text())
    assert card["metric"] == "In_Score" and "objective In_Score" in card["description"]
    assert suites.load(inner).oracle(mixes[0])[1] == "recorded"
    with pytest.raises(SweepError, match="no 'Out' score; valid: grounding"):
        export_suite(store, s, "bad", tmp_path / "bad", metric="Out")
    assert not (tmp_path / "bad").exists()


def test_signal_interval_covers_the_true_snr_at_its_level():
    """Simulated sweeps of fixed mixtures with a known SNR of the 4-seed mean, through the table interface:
    the 90% interval covers sqrt(n * sum (mu - mean mu)^2 / ((k - 1) sigma_w^2)) in 90% ± 4% of 300
    (tests/test_signal.py checks 700 at 8 and 20 seeds)."""
    rng = np.random.default_rng(1)
    k, n, sw = 24, 4, 0.03
    mu = rng.normal(0.3, 0.02, k)
    truth = np.sqrt(n * np.sum((mu - mu.mean()) ** 2) / ((k - 1) * sw**2))
    hits = 0
    for rep in range(300):
        rows = [{"a": i, "seed": j, "m": mu[i] + rng.normal(0, sw)} for i in range(k) for j in range(n)]
        lo, hi = signal_to_noise(pd.DataFrame(rows), ["a"], "m")["snr_mean_ci"]
        hits += lo <= truth <= hi
    assert 0.86 <= hits / 300 <= 0.94


def test_snr_by_seeds_follows_the_square_root_law_and_stops_at_the_shallowest_mixture():
    """24 mixtures with a known between/within ratio and 16 seeds: the SNR of the first k seeds'
    mean tracks sqrt(k sigma_b^2 / sigma_w^2); a mixture with only 6 seeds caps the curve at 6."""
    from harness.suites.signal import by_seeds as snr_by_seeds

    rng = np.random.default_rng(3)
    k, n, sb, sw = 24, 16, 0.02, 0.04
    mu = rng.normal(0.3, sb, k)
    df = pd.DataFrame([{"a": i, "seed": 100 - j, "m": mu[i] + rng.normal(0, sw)} for i in range(k) for j in range(n)])
    curve = snr_by_seeds(df, ["a"], "m")
    assert [c["seeds"] for c in curve] == [2, 4, 6, 8, 10, 12, 14, 16]
    assert curve[-1]["snr_mean"] == signal_to_noise(df, ["a"], "m")["snr_mean"]
    for c in curve:
        lo, hi = c["snr_mean_ci"]
        assert c["mixtures"] == k and lo <= c["snr_mean"] <= hi
    assert curve[-1]["snr_mean"] > curve[0]["snr_mean"] * 2  # √(16/4)/√(2/4) = 2.8
    # the lowest k seed numbers (the order a sweep runs them), not row order (rows go 100, 99, ...)
    first2 = df[df["seed"] <= 86]
    assert curve[0]["snr_mean"] == signal_to_noise(first2, ["a"], "m")["snr_mean"]
    shallow = df[~((df["a"] == 0) & (df["seed"] < 95))]  # mixture 0 keeps 6 seeds
    assert [c["seeds"] for c in snr_by_seeds(shallow, ["a"], "m")] == [2, 4, 6]


def test_seeds_for_target_inverts_the_anova_ratio():
    from harness.suites.signal import seeds_for_target

    assert seeds_for_target(3.0, 8) == 8  # already at the target
    # sigma_b/sigma_w = 0.5 measured at n = 8: snr² = F - 1 = 8/4 = 2; target 3 needs n/4 = 9, n = 36
    assert seeds_for_target(np.sqrt(2.0), 8) == 36
    assert seeds_for_target(0.0, 8) is None  # no measured signal: no estimate


def test_sweep_seeds_take_a_count_like_bench(tmp_path):
    """One seed syntax everywhere: a bare N is a count (seeds 0..N-1), as in bench --seeds."""
    r = CliRunner().invoke(
        main,
        [
            "sweep",
            "--suite",
            BOWL,
            "--runner",
            "replay",
            "--mixtures",
            "12",
            "--seeds",
            "3",
            "--store",
            str(tmp_path / "s"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "12 mixtures x 3 seeds = 36 runs" in r.output
    r = CliRunner().invoke(
        main,
        [
            "sweep",
            "--suite",
            BOWL,
            "--runner",
            "replay",
            "--mixtures",
            "12",
            "--seeds",
            "0",
            "--store",
            str(tmp_path / "t"),
        ],
    )
    assert r.exit_code == 2 and "a count of seeds must be at least 1" in r.output
