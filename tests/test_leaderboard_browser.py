"""The rendered site in a real headless browser (Debian's chromium via playwright), from file:// and http://.

`make test` installs chromium (`make browser`); where it is missing these tests skip, saying so.
"""

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest

from tests.leaderboard_fixtures import HOSTILE, lb_bench, lb_site  # noqa: F401 - fixtures

CHROMIUM = os.environ.get("MODOMODO_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOT = Path(os.environ.get("MODOMODO_SCREENSHOT", "/tmp/leaderboard-overview.png"))

pytestmark = pytest.mark.slow

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
if not (Path(CHROMIUM).is_file() or shutil.which("chromium")):
    pytest.skip(f"no chromium at {CHROMIUM}: run `make browser`", allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        exe = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
        b = p.chromium.launch(executable_path=exe, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(lb_site):
    handler = functools.partial(_QuietHandler, directory=str(lb_site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Page:
    """A page with every console message, page error, dialog and failed request recorded."""

    def __init__(self, browser, url):
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.problems, self.dialogs = [], []
        self.page.on(
            "console",
            lambda m: self.problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None,
        )
        self.page.on("pageerror", lambda e: self.problems.append(f"pageerror: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"requestfailed: {r.url}"))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(url)
        self.page.wait_for_load_state("load")

    def images_loaded(self) -> list[str]:
        return self.page.evaluate("""() => Array.from(document.images).filter(
            i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'))""")

    def close(self):
        self.page.close()


def _sort_values(page, table_sel, col):
    return page.evaluate(
        """([sel, col]) => Array.from(document.querySelectorAll(sel + ' tbody tr'))
        .filter(r => !r.hidden).map(r => r.cells[col].getAttribute('data-sort'))""",
        [table_sel, col],
    )


def _col(page, table_sel, title):
    heads = page.eval_on_selector_all(f"{table_sel} thead th", "els => els.map(e => e.textContent.trim())")
    return next(i for i, h in enumerate(heads) if h.startswith(title))


@pytest.mark.parametrize("scheme", ["file", "http"])
def test_overview_comes_first_and_sorts_and_filters(browser, lb_site, server, scheme):
    base = f"file://{lb_site}" if scheme == "file" else server
    p = Page(browser, f"{base}/index.html")
    page = p.page
    try:
        # the overview is the first thing under the header, and its matrix starts within the first screen
        first = page.evaluate("""() => { const m = document.querySelector('main').firstElementChild;
            const h = document.querySelector('header.top').getBoundingClientRect();
            return {id: m.id, top: m.getBoundingClientRect().top, header: h.bottom}; }""")
        assert first["id"] == "overview" and first["top"] - first["header"] < 40, first
        sel = "#table-overview-continuous"
        box = page.locator(sel).bounding_box()
        assert box["y"] < 700, box
        assert page.locator("#table-suite").count() == 0  # the per-suite tables are on the suite pages
        assert page.locator("#track-pool").count() == 1 and page.locator("#track-continuous").count() == 1
        assert page.locator("#verdicts-pool li.apart").count() == 1  # paper-qwen2vl-2b cannot rank, and says why
        assert "cannot rank" in page.locator("#verdicts-pool").inner_text()
        assert page.locator("#cannot-rank #table-overview-apart").count() == 1
        assert p.images_loaded() == []

        rows = page.locator(f"{sel} tbody tr")
        assert rows.count() == 4 and page.locator(f"{sel} tr.ref").count() == 1
        # default order: mean rank, best first; cells carry their CI in the title
        rank = _col(page, sel, "Mean rank")
        vals = [float(v) for v in _sort_values(page, sel, rank)]
        assert vals == sorted(vals)
        cell = page.locator(f"{sel} tbody td.cell").first
        assert "95% CI" in cell.get_attribute("title") and "place" in cell.get_attribute("title")
        # 3 seeds: no lowest mean is separable (the smallest sign-flip p is 0.25), so no cell is marked best
        assert page.locator(f"{sel} td.best").count() == 0 and page.locator("#legend").is_visible()
        assert (
            page.locator(f"{sel} tfoot tr.mdd-row").is_visible() and page.locator("#separates-continuous").is_visible()
        )
        # click a suite column: lowest regret first, then again: highest first
        suite_col = _col(page, sel, "lb-toy")
        page.locator(f"{sel} thead th").nth(suite_col).click()
        vals = [float(v) for v in _sort_values(page, sel, suite_col)]
        assert (
            vals == sorted(vals)
            and page.locator(f"{sel} thead th").nth(suite_col).get_attribute("aria-sort") == "ascending"
        )
        page.locator(f"{sel} thead th").nth(suite_col).click()
        assert [float(v) for v in _sort_values(page, sel, suite_col)] == sorted(vals, reverse=True)
        name = _col(page, sel, "Strategy")
        page.locator(f"{sel} thead th").nth(name).click()
        names = _sort_values(page, sel, name)
        assert names == sorted(names, key=str.lower)

        # filters: family and name (the overview is at one stated budget: no budget filter here)
        assert page.locator("input[name=budget]").count() == 0
        page.locator("input[data-family-filter='reference']").first.uncheck()
        fams = set(_sort_values(page, sel, _col(page, sel, "Family")))
        assert "reference" not in fams and fams
        assert page.locator(f"{sel} tr.ref:visible").count() == 0
        page.locator("input[data-family-filter='reference']").first.check()
        page.fill("#strategy-search", "seed")
        assert _sort_values(page, sel, name) == ["seed"]
        page.fill("#strategy-search", "")

        # the hostile name is text, and ran nothing
        assert page.get_by_text(HOSTILE, exact=True).count() >= 2
        assert page.evaluate("() => document.querySelectorAll('script').length") == 1
        assert p.dialogs == []
        assert p.problems == []
    finally:
        p.close()


@pytest.mark.parametrize("scheme", ["file", "http"])
def test_suite_page_tables_sorting_filters(browser, lb_site, server, scheme):
    base = f"file://{lb_site}" if scheme == "file" else server
    rel = next((lb_site / "suites").glob("lb-toy-*.html")).relative_to(lb_site)
    p = Page(browser, f"{base}/{rel}")
    page = p.page
    try:
        sel = "#table-suite"
        assert page.locator("table.board tr.ref").count() >= 1
        # default: budget 8 only, ordered by normalised regret (best first)
        reg = _col(page, sel, "Norm. regret")
        vals = [float(v) for v in _sort_values(page, sel, reg)]
        assert len(vals) == 4 and vals == sorted(vals)
        score = _col(page, sel, "Score")
        page.locator(f"{sel} thead th").nth(score).click()
        vals = [float(v) for v in _sort_values(page, sel, score)]
        assert vals == sorted(vals, reverse=True)
        page.locator("input[name=budget][value='4']").first.check()
        assert set(_sort_values(page, sel, _col(page, sel, "Budget"))) == {"4"}
        page.locator("input[name=budget][value='all']").first.check()
        assert len(_sort_values(page, sel, 0)) == 8
        assert page.locator("pre.command.reproduce").inner_text().startswith("modomodo bench --suite ")
        # the strategy selector brings one strategy's line forward in the plots (CSS inside the SVG, by fragment)
        fig = page.locator("img[data-focusable]").first
        before = fig.screenshot()
        options = page.eval_on_selector_all("#focus-select option", "els => els.map(e => [e.value, e.textContent])")
        value = next(v for v, text in options if text == "random")
        page.select_option("#focus-select", value)
        page.wait_for_timeout(300)
        assert all(
            page.locator("img[data-focusable]").nth(i).get_attribute("src").endswith("#" + value)
            for i in range(page.locator("img[data-focusable]").count())
        )
        assert fig.screenshot() != before
        page.select_option("#focus-select", "")
        assert "#" not in fig.get_attribute("src")
        assert p.images_loaded() == [] and p.problems == [] and p.dialogs == []
    finally:
        p.close()


def test_overview_screenshot(browser, lb_site):
    """A fresh overview, as a visitor first sees it (kept for a human to look at)."""
    p = Page(browser, f"file://{lb_site}/index.html")
    try:
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        p.page.screenshot(path=str(SCREENSHOT), full_page=True)
        assert SCREENSHOT.stat().st_size > 10_000 and p.problems == []
    finally:
        p.close()


@pytest.mark.parametrize("scheme", ["file", "http"])
def test_every_page_loads_cleanly(browser, lb_site, server, scheme):
    base = f"file://{lb_site}" if scheme == "file" else server
    pages = sorted(str(f.relative_to(lb_site)) for f in lb_site.rglob("*.html"))
    assert len(pages) == 1 + 2 + 4 + 3  # index, suites, strategies, data, submit, cross-base
    for rel in pages:
        p = Page(browser, f"{base}/{rel}")
        try:
            assert p.images_loaded() == [], rel
            assert p.problems == [] and p.dialogs == [], (rel, p.problems, p.dialogs)
            assert p.page.locator("#provenance").is_visible(), rel
            # every relative link resolves to a file of the site
            hrefs = p.page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
            for h in hrefs:
                target = h.split("#")[0]
                if target:
                    assert (lb_site / Path(rel).parent / target).resolve().is_file(), (rel, h)
        finally:
            p.close()


def test_hostile_strategy_page_shows_the_name_as_text(browser, lb_site):
    page_file = next(f for f in (lb_site / "strategies").glob("script-*.html"))
    p = Page(browser, f"file://{page_file}")
    try:
        assert p.page.locator("h1").inner_text().startswith(HOSTILE)
        assert "<img src=x onerror=alert(2)>" in p.page.inner_text("main")
        assert p.page.locator("main img[src='x']").count() == 0
        assert p.page.evaluate("() => document.querySelectorAll('script').length") == 1
        assert p.dialogs == [] and p.problems == []
        # the SVG picture of the weights loads (names inside it are text, and <img> never runs scripts)
        assert p.images_loaded() == []
    finally:
        p.close()
