"""The leaderboard: statistics, the rendered site (from a real bench run), and publishing up to the Hub call."""

import hashlib
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leaderboard import publish as pub
from leaderboard.data import load_results
from leaderboard.results_folder import ResultsError
from leaderboard.stats import _rank_corr, best_so_far_curve, bootstrap_ci, compute, sign_test
from tests.conftest import cli
from tests.leaderboard_fixtures import HOSTILE, lb_bench, lb_site  # noqa: F401 - fixtures

TOKEN = "hf_TESTTOKENdoNotLeak0123456789abcdef"


# -- statistics ---------------------------------------------------------------------------------------
def test_bootstrap_ci_is_deterministic_and_brackets_the_mean():
    x = [0.1, 0.4, 0.35, 0.2, 0.5, 0.3]
    a, b = bootstrap_ci(x, "s", "k", 8), bootstrap_ci(x, "s", "k", 8)
    assert a == b
    mean, lo, hi = a
    assert mean == pytest.approx(np.mean(x)) and lo < mean < hi
    assert min(x) <= lo and hi <= max(x)
    assert bootstrap_ci([0.3], "x") == (0.3, 0.3, 0.3)
    assert all(math.isnan(v) for v in bootstrap_ci([], "x"))
    assert bootstrap_ci([1.0, np.nan, 3.0], "y")[0] == 2.0


def test_sign_test_counts_wins_losses_ties():
    st = sign_test([0.1, 0.2, 0.0, -0.1, 0.3])
    assert (st["wins"], st["losses"], st["ties"], st["K"]) == (3, 1, 1, 5)
    assert st["p_value"] == pytest.approx(5 / 16)  # P(X >= 3 | n=4, 1/2)
    assert math.isnan(sign_test([0.0, 0.0])["p_value"])


def test_best_so_far_curve_starts_at_worst_and_carries_forward():
    traj = pd.DataFrame({"step": [0, 1, 2], "best_so_far": [np.nan, 0.5, 0.8]})
    curve = best_so_far_curve(traj, 5, best=1.0, worst=0.0, maximize=True)
    assert curve.tolist() == pytest.approx([1.0, 0.5, 0.2, 0.2, 0.2])
    mn = best_so_far_curve(pd.DataFrame({"step": [0], "best_so_far": [2.0]}), 2, best=1.0, worst=3.0, maximize=False)
    assert mn.tolist() == pytest.approx([0.5, 0.5])


def test_statistics_agree_with_the_summary(lb_bench):
    res = load_results([lb_bench])
    st = compute(res)
    summary = pd.read_csv(lb_bench / "summary.csv")
    for r in st.table.itertuples():
        g = summary[(summary.suite == r.suite) & (summary.strategy == r.strategy) & (summary.budget == r.budget)]
        assert r.n_seeds == len(g) == 3
        assert r.score_mean == pytest.approx(g.score.mean())
        assert r.nregret_mean == pytest.approx(g.normalized_regret.mean())
        assert r.gain_mean == pytest.approx(g.gain_over_uniform.mean())  # both suites maximise
        assert r.score_lo <= r.score_mean <= r.score_hi
        assert 1 <= r.rank_mean <= 4
    uni = st.table[st.table.strategy == "uniform"]
    assert (uni.gain_mean.abs() < 1e-12).all() and (uni.K == 3).all() and (uni.beats_uniform == 0).all()
    assert uni.auc_mean.isna().all()  # uniform spends no pilots: no best-so-far curve
    others = st.table[st.table.strategy != "uniform"]
    assert others.auc_mean.notna().all()
    # ranks within each (suite, budget, seed) are a permutation-with-ties of 1..4
    sums = st.studies.groupby(["suite", "budget", "seed"])["rank"].sum()
    assert (sums == 1 + 2 + 3 + 4).all()
    assert set(st.overall.strategy) == set(res.strategies) and st.overall.rank_mean.between(1, 4).all()
    corr = st.rank_corr
    assert len(corr) == 2 and (corr.n_shared == 4).all()
    assert corr.spearman.dropna().between(-1, 1).all()
    # strategy metadata: from the classes where importable, from bench.json for the user's file
    assert res.strategies["uniform"]["source"] == "class" and res.strategies["uniform"]["family"] == "reference"
    assert res.strategies[HOSTILE]["source"] == "file" and res.strategies[HOSTILE]["family"] == "<b>evil</b>"
    # a strategy from a file: the page shows its file and hash (issue 13), not "not importable here"
    assert res.strategies[HOSTILE]["file"] == "hostile_strategy.py" and len(res.strategies[HOSTILE]["sha256"]) == 64


def test_rank_correlation_with_its_p_value_between_base_models():
    """Same ordering on two base models: rho 1 and a small p; an unrelated third suite: |rho| < 1, larger p."""
    from types import SimpleNamespace

    strategies = [f"s{i}" for i in range(8)]
    regret = {"a": np.arange(8.0), "b": np.arange(8.0) * 2 + 1, "c": np.array([3, 7, 0, 5, 1, 6, 2, 4], float)}
    table = pd.DataFrame(
        [
            {"suite": su, "budget": 8, "strategy": st, "nregret_mean": regret[su][i]}
            for su in regret
            for i, st in enumerate(strategies)
        ]
    )
    cards = {
        "a": {"card": {"protocol": {"base_model": "tiny-h64"}}},
        "b": {"card": {"protocol": {"base_model": "h128"}}},
        "c": {},
    }
    corr = _rank_corr(table, SimpleNamespace(suites=cards)).set_index(["suite_a", "suite_b"])
    ab, ac = corr.loc[("a", "b")], corr.loc[("a", "c")]
    assert ab.spearman == pytest.approx(1.0) and ab.spearman_p < 1e-3 and ab.base_model_b == "h128"
    assert abs(ac.spearman) < 0.5 and ac.spearman_p > 0.2


def test_merging_results_folders_and_refusing_incomparable_ones(lb_bench, tmp_path):
    one = load_results([lb_bench])
    two = load_results([lb_bench, lb_bench])
    assert len(two.summary) == len(one.summary) and two.duplicates_dropped == len(one.summary)
    other = tmp_path / "other"
    shutil.copytree(lb_bench, other, ignore=shutil.ignore_patterns("store"))
    s = pd.read_csv(other / "summary.csv")
    s.loc[s.suite == "lb-toy", "protocol"] = "ffffffffffffffff"
    s.to_csv(other / "summary.csv", index=False)
    meta = json.loads((other / "bench.json").read_text())
    for e in meta["suites"]:
        if e["name"] == "lb-toy":
            e["protocol"] = "ffffffffffffffff"
    (other / "bench.json").write_text(json.dumps(meta))
    with pytest.raises(ResultsError, match="lb-toy.*not comparable"):
        load_results([lb_bench, other])
    with pytest.raises(ResultsError, match="no summary.csv"):
        load_results([tmp_path])


# -- the site -------------------------------------------------------------------------------------------
def _pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def test_site_has_every_page_download_and_provenance(lb_site, lb_bench):
    meta = json.loads((lb_bench / "bench.json").read_text())
    names = {p.name for p in (lb_site / "strategies").glob("*.html")}
    assert len(names) == 4 and any(n.startswith("uniform-") for n in names)
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+\.html", n) for n in names)  # hostile name: a safe file name
    assert len(list((lb_site / "suites").glob("*.html"))) == 2
    for f in (
        "summary.csv.gz",
        "trajectories.csv.gz",
        "leaderboard.csv",
        "leaderboard.json",
        "bench.json",
        "overall_rank.csv",
        "rank_correlation.csv",
    ):
        assert (lb_site / "data" / f).stat().st_size > 0
    board = pd.read_csv(lb_site / "data" / "leaderboard.csv")
    assert {
        "score_lo",
        "score_hi",
        "gain_mean",
        "nregret_mean",
        "auc_mean",
        "rank_mean",
        "beats_uniform",
        "p_sign",
    } <= set(board.columns)
    assert len(board) == 2 * 4 * 2
    for page in _pages(lb_site):
        html = page.read_text()
        assert meta["git_sha"] in html, page
        assert all(s["protocol"] in html for s in meta["suites"]), page
        assert meta["created"] in html and "modomodo 0." in html, page
        assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html, page  # no CDN
    # no absolute local paths in what gets published
    for f in lb_site.rglob("*"):
        if f.is_file():
            assert str(lb_bench.parent) not in f.read_text(errors="ignore"), f
    suite_page = next((lb_site / "suites").glob("paper-qwen2vl-2b-*.html")).read_text()
    assert "Surrogate fit error" in suite_page and "loo_rmse" in suite_page and "Qwen2-VL-2B-Instruct" in suite_page
    index = (lb_site / "index.html").read_text()
    assert index.count('<table class="board sortable matrix"') >= 2 and "reference" in index
    assert re.search(r'<img src="plots/cd-[^"]+\.svg"', index)
    for src in re.findall(r'src="([^"]+)"', index):
        assert (lb_site / src).is_file(), src
    # the per-suite tables live on the suite pages, one click away
    assert 'id="table-suite"' not in index and "table-paper" not in index
    assert (
        re.search(r'<img data-focusable src="\.\./plots/regret-[^"]+\.svg"', suite_page)
        and 'id="table-suite"' in suite_page
    )
    for kind in ("history", "mixtures"):  # one study's pilots, and the mixtures tried, on every suite page
        for page in (lb_site / "suites").glob("*.html"):
            src = re.search(rf'<img src="\.\./(plots/{kind}-[^"]+\.svg)"', page.read_text())
            assert src and (lb_site / src.group(1)).is_file(), (kind, page)
    trajectories = pd.read_csv(lb_site / "data" / "trajectories.csv.gz")
    assert len(trajectories) == len(pd.read_csv(lb_bench / "trajectories.csv"))
    assert len(pd.read_csv(lb_site / "data" / "summary.csv.gz")) == len(pd.read_csv(lb_bench / "summary.csv"))
    raw = pd.read_csv(lb_bench / "trajectories.csv")
    first = json.loads(raw["mixture"].iloc[0])
    wcols = [c for c in trajectories.columns if c.startswith("w_")]
    assert "mixture" not in trajectories.columns and "run_key" not in trajectories.columns and wcols
    for d, v in first.items():  # the same weights, to the 10 significant digits of every table on the site
        assert trajectories[f"w_{d}"].iloc[0] == pytest.approx(v, rel=1e-9, abs=1e-12)


def test_hostile_text_is_escaped_everywhere(lb_site):
    for f in list(lb_site.rglob("*.html")) + list(lb_site.rglob("*.svg")):
        text = f.read_text()
        assert HOSTILE not in text, f
        assert "<img src=x" not in text and "<b>evil</b>" not in text and "<a href='javascript" not in text, f
    index = (lb_site / "index.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in index
    # the only scripts are the site's own file
    for f in lb_site.rglob("*.html"):
        assert re.findall(r"<script[^>]*>", f.read_text()) == [
            f'<script src="{"../" if f.parent != lb_site else ""}assets/leaderboard.js" defer>'
        ]
    assert json.loads((lb_site / "data" / "leaderboard.json").read_text())["strategies"][HOSTILE]["name"] == HOSTILE


def test_render_is_byte_identical(lb_bench, lb_site, tmp_path, monkeypatch):
    """The same results give the same bytes: rendered again in one process (no worker: the reference), and again
    over it with three worker processes (leaderboard/parallel.py; the fixture's site used the machine's cores)."""
    again = tmp_path / "again"
    monkeypatch.setenv("MODOMODO_RENDER_WORKERS", "1")
    cli("leaderboard", "render", "--results", lb_bench, "--out", again)

    def digest(root):
        return {
            str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    assert digest(again) == digest(lb_site)
    # rendering over an existing site replaces it
    monkeypatch.setenv("MODOMODO_RENDER_WORKERS", "3")
    cli("leaderboard", "render", "--results", lb_bench, "--out", again)
    assert digest(again) == digest(lb_site)


@pytest.mark.parametrize("case", ["missing", "not-results", "out-not-site", "bad-workers"])
def test_render_errors_are_clear(case, tmp_path, lb_bench, monkeypatch):
    out = tmp_path / "site"
    results = lb_bench
    if case == "bad-workers":
        monkeypatch.setenv("MODOMODO_RENDER_WORKERS", "0")
        message = "MODOMODO_RENDER_WORKERS='0': expected a whole number of processes, 1 or more"
    elif case == "missing":
        results, message = tmp_path / "nope", "does not exist"
    elif case == "not-results":
        results, message = tmp_path, "no summary.csv"
    else:
        out.mkdir()
        (out / "precious.txt").write_text("keep me")
        message = "not a leaderboard site"
    proc = cli("leaderboard", "render", "--results", results, "--out", out, check=False)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    if case == "out-not-site":
        assert (out / "precious.txt").read_text() == "keep me"
    else:
        assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".site.")]  # no half-built site left


def test_several_results_folders_on_the_command_line(lb_bench, tmp_path):
    proc = cli("leaderboard", "render", "--results", lb_bench, lb_bench, "--out", tmp_path / "s")
    assert "index.html" in proc.stdout


def test_duplicate_studies_are_merged_with_one_quiet_note(lb_bench, tmp_path):
    """The same studies in two results folders (e.g. a bench resumed into a copy): merged, one note on the data
    page, no warning banner anywhere."""
    copy = tmp_path / "again"
    shutil.copytree(lb_bench, copy, ignore=shutil.ignore_patterns("store"))
    one, two = load_results([lb_bench]), load_results([lb_bench, copy])
    assert two.warnings == [] and len(two.notes) == 1
    assert str(len(one.summary)) in two.notes[0] and "merged" in two.notes[0]
    assert len(two.summary) == len(one.summary) and len(two.trajectories) == len(one.trajectories)
    site = tmp_path / "s"
    cli("leaderboard", "render", "--results", lb_bench, copy, "--out", site)
    data_page = (site / "data.html").read_text()
    assert data_page.count('id="merge-note"') == 1 and "appeared in more than one results folder" in data_page
    for page in site.rglob("*.html"):
        html = page.read_text()
        if page.name != "data.html":
            assert "appeared in more than one results folder" not in html, page
    # the merged site gives the numbers of the single folder
    assert (site / "data" / "leaderboard.csv").read_bytes() == (
        _single_site(lb_bench, tmp_path) / "data" / "leaderboard.csv"
    ).read_bytes()


def _single_site(results, tmp_path):
    out = tmp_path / "single"
    if not out.exists():
        cli("leaderboard", "render", "--results", results, "--out", out)
    return out


def test_best_marks_come_from_the_within_suite_verdicts():
    """A cell is marked best only where within_suite found the lowest mean separable from every other strategy on a
    suite that can rank; a slice of the table (a strategy's page) keeps the marks of the whole."""
    from leaderboard.site_views import best_marks

    ev = pd.DataFrame(
        [
            {"suite": "s", "budget": 8, "best": "a"},
            {"suite": "s", "budget": 4, "best": ""},
            {"suite": "t", "budget": 2.5, "best": "b"},
        ]
    )
    assert best_marks(ev) == {("s", "a", 8), ("t", "b", 2.5)}
    assert best_marks(pd.DataFrame()) == set()


def test_strategy_page_highlights_only_separable_bests(lb_site, lb_bench):
    """A strategy page marks a cell best only where within_suite.csv names that strategy separably best, and says
    what the mark means; on the small fixture bench (3 seeds) no best is separable."""
    from leaderboard.site_views import slug

    ev = pd.read_csv(lb_site / "data" / "within_suite.csv", keep_default_na=False)
    board = pd.read_csv(lb_site / "data" / "leaderboard.csv")
    for name in board.strategy.unique():
        html = (lb_site / "strategies" / f"{slug(name)}.html").read_text()
        assert len(re.findall(r'class="num best"', html)) == int((ev["best"] == name).sum())
    # 3 seeds: the smallest two-sided sign-flip p is 2/8 = 0.25, so nothing is ever separable
    assert (ev["best"] == "").all() and (ev["mdd"].astype(float) > 0).all()
    index = (lb_site / "index.html").read_text()
    assert "Minimum detectable difference (80% power)" in index and 'class="separates"' in index


def test_site_size_budget_and_compressed_trajectories(lb_bench, lb_site):
    """The site stays small: trajectories are gzip (no name, mtime 0: same bytes for the same inputs), and the
    whole site is a small multiple of the inputs' summary (the demo's site: under 10 MB)."""
    import gzip

    for name in ("trajectories", "summary"):
        gz = (lb_site / "data" / f"{name}.csv.gz").read_bytes()
        assert gz[:2] == b"\x1f\x8b" and gz[4:8] == b"\x00\x00\x00\x00"  # gzip magic, mtime 0
        raw = gzip.decompress(gz)
        assert len(gz) < 0.5 * len(raw)
        assert not (lb_site / "data" / f"{name}.csv").exists()
    total = sum(f.stat().st_size for f in lb_site.rglob("*") if f.is_file())
    assert total < 4_000_000, total  # this small bench: ~1-2 MB


def test_reproduce_commands_and_submit_page(lb_site, lb_bench):
    meta = json.loads((lb_bench / "bench.json").read_text())
    for page in list((lb_site / "suites").glob("*.html")) + list((lb_site / "strategies").glob("*.html")):
        html = page.read_text()
        cmds = re.findall(r'<pre class="command reproduce">([^<]*)</pre>', html)
        assert len(cmds) == 1, page
        cmd = cmds[0].replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
        assert cmd.startswith("modomodo bench --suite ") and "--budget 4,8 --seeds 3" in cmd, cmd
        assert "--out results/" in cmd
    paper = next((lb_site / "suites").glob("paper-qwen2vl-2b-*.html")).read_text()
    cmd = re.findall(r'<pre class="command reproduce">([^<]*)</pre>', paper)[0]
    assert "--suite paper-qwen2vl-2b " in cmd and "--track pool" in cmd
    assert "--strategy-file hostile_strategy.py" in cmd or "hostile_strategy.py" in cmd
    names = [s["name"] for s in meta["strategies"]]
    assert all(n.replace("<", "&lt;").replace(">", "&gt;") in paper for n in names)
    uniform = next((lb_site / "strategies").glob("uniform-*.html")).read_text()
    ucmd = re.findall(r'<pre class="command reproduce">([^<]*)</pre>', uniform)[0]
    assert "--strategy uniform " in ucmd and "--strategy-file" not in ucmd
    submit = (lb_site / "submit.html").read_text()
    for needle in (
        "StrategyConformance",
        'load_file("my_strategy.py")',
        "modomodo bench",
        "--strategy-file my_strategy.py",
        "modomodo leaderboard render",
        "modomodo leaderboard publish",
        "bubblewrap",
        "May not",
    ):
        assert needle in submit, needle
    assert "submit.html" in (lb_site / "index.html").read_text()


# -- publishing -------------------------------------------------------------------------------------------
class FakeApi:
    """Records the Hub calls; can be told to fail at one of them."""

    def __init__(self, exists=False, files=(), fail_at=None, error=None):
        self.exists, self.files, self.fail_at, self.error = exists, list(files), fail_at, error
        self.calls = []

    def _call(self, name, *args, **kwargs):
        self.calls.append((name, args, kwargs))
        if name == self.fail_at:
            raise self.error

    def repo_exists(self, repo_id, repo_type=None):
        self._call("repo_exists", repo_id, repo_type=repo_type)
        return self.exists

    def create_repo(self, repo_id, **kw):
        self._call("create_repo", repo_id, **kw)

    def list_repo_files(self, repo_id, repo_type=None):
        self._call("list_repo_files", repo_id, repo_type=repo_type)
        return self.files

    def create_commit(self, repo_id, operations, **kw):
        self._call("create_commit", repo_id, list(operations), **kw)

        class Info:
            commit_url = f"https://huggingface.co/spaces/{repo_id}/commit/abc"

        return Info()

    def delete_repo(self, repo_id, **kw):
        self._call("delete_repo", repo_id, **kw)

    def names(self):
        return [c[0] for c in self.calls]


def test_plan_space_and_dataset(lb_site):
    space = pub.plan(lb_site, "org/board", "space")
    assert "index.html" in space.paths and "README.md" in space.paths and "site.json" in space.paths
    readme = dict(space.files)["README.md"].decode()
    assert readme.startswith("---\n") and "sdk: static" in readme and "app_file: index.html" in readme
    assert "v0." in space.commit_message and "modomodo leaderboard" in space.commit_message
    assert space.paths == sorted(space.paths)
    data = pub.plan(lb_site, "org/board", "dataset")
    assert "site/index.html" in data.paths and "data/summary.csv.gz" in data.paths and "index.html" not in data.paths
    readme = dict(data.files)["README.md"].decode()
    assert "configs:" in readme and "data/trajectories.csv.gz" in readme and "data/leaderboard.csv" in readme
    assert all(p in data.paths for p in re.findall(r"data_files: (\S+)", readme))
    with pytest.raises(pub.PublishError, match="ORG/NAME"):
        pub.plan(lb_site, "noslash", "space")
    with pytest.raises(pub.PublishError, match="not a rendered leaderboard site"):
        pub.plan(lb_site / "data", "org/board", "space")


def test_publish_creates_the_repo_and_makes_one_commit(lb_site):
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    plan = pub.plan(lb_site, "org/board", "space")
    api = FakeApi(exists=False)
    url = pub.publish(plan, api=api, token=TOKEN)
    assert api.names() == ["repo_exists", "create_repo", "create_commit"]
    assert api.calls[1][2]["space_sdk"] == "static" and api.calls[1][2]["repo_type"] == "space"
    _, (repo, ops), kw = api.calls[2]
    assert repo == "org/board" and kw["commit_message"] == plan.commit_message and kw["repo_type"] == "space"
    assert all(isinstance(o, CommitOperationAdd) for o in ops)
    assert sorted(o.path_in_repo for o in ops) == plan.paths
    assert url.endswith("/commit/abc") and TOKEN not in url

    # an existing repo: stale pages of an older render are deleted in the same commit, other files kept
    api = FakeApi(exists=True, files=["strategies/gone-12345678.html", "notes.md", ".gitattributes", "index.html"])
    pub.publish(plan, api=api, token=TOKEN)
    assert api.names() == ["repo_exists", "list_repo_files", "create_commit"]
    ops = api.calls[2][1][1]
    deleted = [o.path_in_repo for o in ops if isinstance(o, CommitOperationDelete)]
    assert deleted == ["strategies/gone-12345678.html"]


def test_publish_failure_leaves_nothing_and_never_shows_the_token(lb_site):
    plan = pub.plan(lb_site, "org/board", "space")
    api = FakeApi(exists=False, fail_at="create_commit", error=RuntimeError(f"boom with Bearer {TOKEN} inside"))
    with pytest.raises(pub.PublishError) as e:
        pub.publish(plan, api=api, token=TOKEN)
    assert TOKEN not in str(e.value) and "nothing was published" in str(e.value)
    assert api.names()[-1] == "delete_repo"  # the repo this call created is removed again
    # an existing repo is never deleted
    api = FakeApi(exists=True, fail_at="create_commit", error=ConnectionError(f"down {TOKEN}"))
    with pytest.raises(pub.PublishError, match="cannot reach the Hugging Face Hub") as e:
        pub.publish(plan, api=api, token=TOKEN)
    assert "delete_repo" not in api.names() and TOKEN not in str(e.value)


def test_publish_maps_a_refused_token(lb_site):
    from huggingface_hub.errors import HfHubHTTPError

    class Resp:
        status_code = 401
        headers = {}
        request = None

    err = HfHubHTTPError(f"401 Unauthorized for token {TOKEN}", response=Resp())
    api = FakeApi(exists=False, fail_at="repo_exists", error=err)
    with pytest.raises(pub.PublishError, match="refused the token") as e:
        pub.publish(pub.plan(lb_site, "org/board", "space"), api=api, token=TOKEN)
    assert TOKEN not in str(e.value) and api.names() == ["repo_exists"]


def test_publish_without_a_token_says_so(lb_site, monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(pub, "get_token", lambda: None)
    api = FakeApi()
    with pytest.raises(pub.PublishError, match="no Hugging Face token"):
        pub.publish(pub.plan(lb_site, "org/board"), api=api)
    assert api.calls == []


def test_publish_cli_dry_run_offline_and_no_token(lb_site, tmp_path):
    # HF_HUB_OFFLINE is pinned off: other tests in this process run harness.training's
    # set_offline_env(), which sets it in os.environ, and the CLI subprocess inherits os.environ.
    env = {
        "HF_TOKEN": TOKEN,
        "HF_HOME": str(tmp_path / "hf"),
        "HF_ENDPOINT": "http://127.0.0.1:9",
        "HF_HUB_OFFLINE": "0",
    }
    dry = cli("leaderboard", "publish", "--site", lb_site, "--repo-id", "org/board", "--dry-run", env=env)
    assert "index.html" in dry.stdout and "would commit to space 'org/board'" in dry.stdout
    assert "nothing was uploaded" in dry.stdout and TOKEN not in dry.stdout + dry.stderr
    # no network: a clear message, exit 2, the token nowhere
    proc = cli("leaderboard", "publish", "--site", lb_site, "--repo-id", "org/board", env=env, check=False)
    assert proc.returncode == 2 and "cannot reach the Hugging Face Hub" in proc.stderr
    assert TOKEN not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
    # offline mode: says so, exit 2, the token nowhere
    proc = cli(
        "leaderboard",
        "publish",
        "--site",
        lb_site,
        "--repo-id",
        "org/board",
        check=False,
        env={**env, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 2 and "HF_HUB_OFFLINE is set" in proc.stderr
    assert TOKEN not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
    # no token at all
    proc = cli(
        "leaderboard", "publish", "--site", lb_site, "--repo-id", "org/board", check=False, env={**env, "HF_TOKEN": ""}
    )
    assert proc.returncode == 2 and "no Hugging Face token" in proc.stderr
    # the site itself never contains a token
    for f in lb_site.rglob("*"):
        if f.is_file():
            assert TOKEN not in f.read_text(errors="ignore")


def _hand_results(goal="min"):
    from leaderboard.data import Results

    rows = []
    for seed, (a, b) in enumerate([(1.0, 2.0), (1.5, None), (0.5, 2.5)]):
        rows.append(
            {
                "suite": "s",
                "strategy": "a",
                "budget": 4,
                "seed": seed,
                "score": a,
                "status": "ok",
                "normalized_regret": a / 4,
                "uniform_score": 2.0,
                "best_known": 0.0,
                "worst_known": 4.0,
                "protocol": "p",
                "recommended": "",
            }
        )
        rows.append(
            {
                "suite": "s",
                "strategy": "b",
                "budget": 4,
                "seed": seed,
                "score": b,
                "status": "ok" if b is not None else "failed",
                "normalized_regret": None if b is None else b / 4,
                "uniform_score": 2.0,
                "best_known": 0.0,
                "worst_known": 4.0,
                "protocol": "p",
                "recommended": "",
            }
        )
    summary = pd.DataFrame(rows)
    traj = pd.DataFrame(columns=["suite", "strategy", "budget", "seed", "step", "best_so_far"])
    suites = {"s": {"name": "s", "goal": goal, "best_known": 0.0, "worst_known": 4.0, "protocol": "p", "card": {}}}
    strategies = {n: {"name": n, "family": "other", "description": "", "citation": "", "source": "x"} for n in "ab"}
    return Results(summary, traj, [], [], suites, strategies)


def test_minimised_metric_and_failed_studies():
    st = compute(_hand_results("min"))
    a = st.table[st.table.strategy == "a"].iloc[0]
    b = st.table[st.table.strategy == "b"].iloc[0]
    # lower score is better: gain over uniform (2.0) is positive for a, whose scores are all below it
    assert a.gain_mean == pytest.approx(2.0 - 1.0) and a.beats_uniform == 3 and a.K == 3
    assert b.n_failed == 1 and b.n_ok == 2 and b.K == 2 and b.gain_mean == pytest.approx(-0.25)
    # a failed study ranks last; a wins every seed
    assert a.rank_mean == 1.0 and b.rank_mean == 2.0
    assert b.score_mean == pytest.approx(2.25)
