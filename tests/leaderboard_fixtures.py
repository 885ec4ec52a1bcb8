"""A real, small `modomodo bench` run for the leaderboard tests (a few seconds), rendered once per session.

Two suites (the paper's replay suite and a small synthetic one), uniform + random + seed + a strategy
whose name, description, citation and family are hostile HTML, budgets 4 and 8, 3 seeds.
"""

import textwrap
from pathlib import Path

import yaml

from tests.conftest import cli, write_synthetic_suite

HOSTILE = "<script>alert(1)</script>"
HOSTILE_FILE = textwrap.dedent("""
    import numpy as np
    from strategies.base import Strategy

    class Hostile(Strategy):
        name = "<script>alert(1)</script>"
        description = "<img src=x onerror=alert(2)> tries to run code"
        citation = "<a href='javascript:alert(3)'>click</a> & co"
        family = "<b>evil</b>"

        def propose(self, history, budget):
            return self.space.from_vector(self.rng.dirichlet(np.ones(self.space.dim)))
""")
STRATEGIES = f"uniform,random,seed,{HOSTILE}"
PREREGISTRATION = {
    "preregistered": "2026-01-02T03:04:05Z",
    "objective": "score",
    "rankability_rule": "analytic: exact scores, so it ranks",
    "design": "every strategy at budgets 4 and 8, 3 seeds",
    "commands": ["modomodo bench --suite lb-toy --out '<b>bench</b>'"],
}


def make_bench(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    suite = write_synthetic_suite(root / "suites" / "lb-toy", kind="bowl", dim=4, noise=0.01, name="lb-toy")
    card = yaml.safe_load((suite / "card.yaml").read_text())  # a pre-registered card (issue 27): shown on its page
    (suite / "card.yaml").write_text(yaml.safe_dump({**card, "preregistration": PREREGISTRATION}))
    sfile = root / "hostile_strategy.py"
    sfile.write_text(HOSTILE_FILE)
    out = root / "bench"
    cli(
        "bench",
        "--suite",
        "paper-qwen2vl-2b",
        "--suite",
        suite,
        "--strategy",
        STRATEGIES,
        "--budget",
        "4,8",
        "--seeds",
        "3",
        "--out",
        out,
        "--strategy-file",
        sfile,
        "--quiet",
        codes=(0, 1),
    )  # hostile studies fail
    return out


def render_site(results: Path, out: Path) -> Path:
    proc = cli("leaderboard", "render", "--results", results, "--out", out)
    assert "open it: file://" in proc.stdout, proc.stdout
    return out


import pytest  # noqa: E402


# Both test modules import these fixtures, which gives each module its own copy of them; the cache
# makes the bench run and the render happen once per session all the same.
_CACHE: dict = {}


@pytest.fixture(scope="session")
def lb_bench(tmp_path_factory) -> Path:
    if "bench" not in _CACHE:
        _CACHE["bench"] = make_bench(tmp_path_factory.mktemp("lb"))
    return _CACHE["bench"]


@pytest.fixture(scope="session")
def lb_site(lb_bench, tmp_path_factory) -> Path:
    if "site" not in _CACHE:
        _CACHE["site"] = render_site(lb_bench, tmp_path_factory.mktemp("lbsite") / "site")
    return _CACHE["site"]
