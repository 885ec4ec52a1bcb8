"""What the README and the leaderboard tell users to type runs as printed (issue 29, item 8), and the card
blocks of a real-run suite page read as blocks in a browser.

Each command is taken from the rendered text (README.md's fenced blocks, the site's <pre class="command">
blocks), not retyped here; live suites (real training: hours) are excluded by the README's own marking and
checked to be marked so on the site."""

from __future__ import annotations

import html
import re
import shlex
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT, cli


def _run(args, cwd):
    """The CLI as a user types it, from `cwd` (so relative paths in a command resolve as they would for them)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env=env,
    )


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def real_site(tmp_path_factory):
    """A board over a real-run suite (minimodo-tiny, its card's Protocol block) and an analytic one."""
    base = tmp_path_factory.mktemp("site")
    results = base / "results"
    cli(
        "bench",
        "--suite",
        "minimodo-tiny",
        "--suite",
        "synth-bowl-5",
        "--strategy",
        "uniform,random",
        "--budget",
        "4",
        "--seeds",
        "2",
        "--out",
        results,
        "--quiet",
    )
    cli("leaderboard", "render", "--results", results, "--out", base / "site")
    return base


def _commands(page: Path) -> list[str]:
    return [
        html.unescape(re.sub(r"<[^>]+>", "", m)).strip()
        for m in re.findall(r'<pre class="command[^"]*"[^>]*>(.*?)</pre>', page.read_text(), re.S)
    ]


@pytest.mark.slow
def test_submit_page_commands_run_as_printed(real_site, tmp_path):
    """The submit page's bench and render commands, with `my_strategy.py` the page's own example, run here."""
    page = real_site / "site" / "submit.html"
    cmds = _commands(page)
    example = next(c for c in cmds if c.startswith("# my_strategy.py"))
    (tmp_path / "my_strategy.py").write_text(example.split("\n", 1)[1] + "\n")
    (tmp_path / "results").symlink_to(real_site / "results", target_is_directory=True)
    bench = next(c for c in cmds if c.startswith("modomodo bench"))
    render = next(c for c in cmds if c.startswith("modomodo leaderboard render"))
    assert "-live" not in bench, "the submit page never starts real training"
    for cmd in (bench, render):
        args = shlex.split(cmd)[1:]
        proc = _run(args, tmp_path)
        assert proc.returncode == 0, (cmd, proc.stderr[-2000:])
    assert (tmp_path / "site" / "index.html").is_file()


def _readme_commands() -> list[str]:
    """`modomodo ...` lines of README.md's bash blocks (continuations joined, comments and [optional] parts
    removed), except those the README marks as training for real."""
    text = (ROOT / "README.md").read_text()
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split("  #")[0].split(" # ")[0].strip()
            if line.startswith("modomodo "):
                out.append(line)
    return out


# what trains for real (hours), needs the network, or rewrites a committed suite: not run here
LIVE = re.compile(r"--runner (cpu|gpu)|^modomodo sweep|--track online|^modomodo verify|--out baselines/")


@pytest.mark.slow
def test_readme_commands_run_as_printed(tmp_path):
    """Every `modomodo` command of the README, in order, from a user's folder (baselines/ beside it, as in a
    checkout): budgets and seeds cut to the first of each so the test stays a test, optional [parts] left out,
    `demo-results` being the first bench's folder (what `make demo` writes). Publish runs with --dry-run only."""
    (tmp_path / "baselines").symlink_to(ROOT / "baselines", target_is_directory=True)
    readme = (ROOT / "README.md").read_text()
    example = re.search(r"```python\n(# my_strategy.py\n.*?)```", readme, re.S).group(1)
    (tmp_path / "my_strategy.py").write_text(example)  # the README's own example strategy
    ran, skipped = [], []
    for cmd in _readme_commands():
        cmd = re.sub(r"\s*\[[^\]]*\]", "", cmd)  # optional parts, as the README writes them
        args = shlex.split(cmd)[1:]
        if LIVE.search(cmd) or args[:2] == ["suite", "import"]:
            skipped.append(cmd)  # suite import: its table is the user's (tests/test_importer.py runs it on RegMix's)
            continue
        if args[:2] == ["leaderboard", "publish"]:
            args.append("--dry-run")
        for flag in ("--budget", "--seeds"):
            if flag in args:
                i = args.index(flag) + 1
                args[i] = args[i].split(",")[0] if flag == "--budget" else "2"
            elif args[0] == "bench":  # the defaults (5 budgets x 20 seeds), cut the same way
                args += [flag, "4" if flag == "--budget" else "2"]
        if args[:1] == ["bench"] and not (tmp_path / "demo-results").exists() and "--out" in args:
            out = tmp_path / args[args.index("--out") + 1]
            (tmp_path / "demo-results").symlink_to(out, target_is_directory=True)
        proc = _run(args, tmp_path)
        if args[:2] == ["leaderboard", "publish"] and proc.returncode != 0 and "huggingface" in proc.stderr.lower():
            skipped.append(cmd)  # the Hub client is not installed here
            continue
        assert proc.returncode == 0, (cmd, proc.stderr[-1500:])
        ran.append(cmd)
    assert len(ran) >= 9, (ran, skipped)
    assert all(LIVE.search(c) or " import " in c for c in skipped), skipped


@pytest.mark.slow
def test_protocol_block_renders_as_a_block(real_site):
    """The Protocol block of a real-run suite page: every value in a column wide enough to read (it was one
    character per line: a long label took the whole grid row)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    exe = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
    if not exe:
        pytest.skip("no chromium: run `make browser`")
    page_path = next((real_site / "site" / "suites").glob("minimodo-tiny*.html"))
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = b.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"file://{page_path}")
            widths = page.evaluate("""() => {
                const h = Array.from(document.querySelectorAll('h3')).find(e => e.textContent.trim() === 'Protocol');
                const dl = h.nextElementSibling;
                return Array.from(dl.querySelectorAll('dd')).map(d => [d.textContent, d.getBoundingClientRect().width]);
            }""")
        finally:
            b.close()
    assert len(widths) >= 5
    narrow = [(t[:40], w) for t, w in widths if w < 150]
    assert not narrow, narrow


def test_the_render_command_names_a_folder_as_the_render_did(monkeypatch, tmp_path):
    """It named `online` for baselines/online (a folder that does not exist); never an absolute path either."""
    from leaderboard.site_commands import folder_ref

    monkeypatch.chdir(ROOT)
    assert folder_ref(ROOT / "baselines" / "online") == "baselines/online"
    assert folder_ref(tmp_path / "results") == "results"
