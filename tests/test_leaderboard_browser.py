"""The leaderboard page in headless Chromium (Debian's `chromium` and `chromium-driver`):
loaded from disk, its rows and ranks match leaderboard.json, a header sorts, the stream and
metric filters switch the ranking, a row opens its drill-down, nothing is logged to the
console, no request leaves the page, and the screenshot is not blank.

Skipped, saying why, where selenium or the browser is missing (.ci/run installs them when
it can)."""

import json
import shutil
from pathlib import Path

import pytest

from harness import verify as V
from harness.leaderboard import build
from tests.test_leaderboard import NAMES, SYNTH, checksum_only, make_board

pytestmark = pytest.mark.browser

INSTALL = "apt-get install chromium chromium-driver"


def _binaries() -> tuple[str, str]:
    browser = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                                "/usr/lib/chromium/chromium") if p and Path(p).exists()), None)
    driver = next((p for p in (shutil.which("chromedriver"), "/usr/lib/chromium/chromedriver")
                   if p and Path(p).exists()), None)
    if not browser or not driver:
        pytest.skip(f"headless Chromium not found (browser {browser}, driver {driver}): "
                    f"`{INSTALL}` to run the browser test")
    return browser, driver


def _open(tmp_path_factory, make):
    """(driver, file URI, leaderboard.json) for the synthetic board `make(root)` writes."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip(f"selenium is not installed: pip install -e '.[test]' and `{INSTALL}`")
    browser, driver_path = _binaries()
    root = tmp_path_factory.mktemp("lb-browser")
    mp = pytest.MonkeyPatch()
    mp.setattr(V, "static_problems", checksum_only)
    mp.setenv("SE_OFFLINE", "true")  # selenium-manager must never download anything
    make(root)
    build(root, suite=SYNTH)
    index = root / "leaderboard" / "index.html"
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1800", "--no-first-run", "--disable-extensions",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-default-apps"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        uri = index.resolve().as_uri()
        _load(driver, uri)
        yield driver, uri, json.loads((root / "leaderboard" / "leaderboard.json").read_text())
    finally:
        driver.quit()
        mp.undo()


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The v1-shaped synthetic board, one browser per module."""
    yield from _open(tmp_path_factory, make_board)


@pytest.fixture(scope="module")
def v2_page(tmp_path_factory):
    """A v2-shaped synthetic board: content primary, strict in by_metric, own-and-final
    nulls, sdft's truncated share 0.8 (tests/test_leaderboard_v2.py)."""
    from tests.test_leaderboard_v2 import make_v2_board

    yield from _open(tmp_path_factory, make_v2_board)


def rows(driver):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, "#board tbody tr")


def shown(driver) -> list[tuple[str, int]]:
    """(method, rank) of every row, top to bottom."""
    from selenium.webdriver.common.by import By

    return [(r.get_attribute("data-method"),
             int(r.find_element(By.CSS_SELECTOR, "td.rank").text.lstrip("=")))
            for r in rows(driver)]


def expected(data, view="all", metric="acc"):
    ranking = data["views"][view]["metrics"][metric]
    return [(m, ranking["methods"][m]["rank"]) for m in ranking["order"]]


def click_header(driver, key):
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, f'#board th[data-key="{key}"]').click()


def select(driver, element_id, value):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, element_id)).select_by_value(value)


def test_page_in_headless_chromium(page, tmp_path):
    from selenium.webdriver.common.by import By

    driver, uri, data = page
    # rows and ranks as leaderboard.json has them, tied ranks marked
    assert shown(driver) == expected(data)
    assert len(rows(driver)) == len(NAMES)
    ranks = [r for _, r in shown(driver)]
    ties = [r.find_element(By.CSS_SELECTOR, "td.rank").text for r in rows(driver)]
    assert all(t.startswith("=") == (ranks.count(int(t.lstrip("="))) > 1) for t in ties)
    assert "6 (stream, seed) pairs per method" in driver.find_element(By.ID, "note").text

    # sorting: by name, then reversed, then back to rank
    click_header(driver, "method")
    assert [m for m, _ in shown(driver)] == sorted(NAMES)
    click_header(driver, "method")
    assert [m for m, _ in shown(driver)] == sorted(NAMES, reverse=True)
    click_header(driver, "rank")
    assert shown(driver) == expected(data)
    # the arrow shows the values' order: ranks ascend; ACC best first descends
    def arrow(key):
        return driver.find_element(By.CSS_SELECTOR, f'#board th[data-key="{key}"]').get_attribute("class")
    assert "sorted-asc" in arrow("rank")
    click_header(driver, "score")
    assert "sorted-desc" in arrow("score")
    click_header(driver, "rank")
    # numbers as Python writes them (an exact half to even), like README.md
    assert driver.execute_script("return [0.0625, -0.0625, 0.0635, 1.5].map(function (x) {"
                                 " return window.leaderboardFormat(x); })") == \
        [format(x, ".3f") for x in (0.0625, -0.0625, 0.0635, 1.5)]

    # filters: the ranking metric and the stream switch to their precomputed rankings
    select(driver, "metric", "drift_final")
    assert shown(driver) == expected(data, "all", "drift_final")
    select(driver, "view", "s2")
    assert shown(driver) == expected(data, "s2", "drift_final")
    figures = driver.find_elements(By.CSS_SELECTOR, "#pareto figure")
    assert [f.get_attribute("data-view") for f in figures if f.is_displayed()] == ["s2"]
    select(driver, "view", "all")
    select(driver, "metric", "acc")
    assert shown(driver) == expected(data)
    assert not driver.find_element(By.CSS_SELECTOR, '#shown input[value="acc"]').is_enabled()
    box = driver.find_element(By.CSS_SELECTOR, '#shown input[value="plasticity"]')
    before = len(driver.find_elements(By.CSS_SELECTOR, "#board thead th"))
    box.click()
    assert len(driver.find_elements(By.CSS_SELECTOR, "#board thead th")) == before + 1

    # drill-down: a row opens its method's cells, score matrices and probe curves
    drill = driver.find_element(By.ID, "drill-best")
    assert not drill.is_displayed()
    next(r for r in rows(driver) if r.get_attribute("data-method") == "best").click()
    assert drill.is_displayed()
    cells = drill.find_element(By.CSS_SELECTOR, "table.cells")
    assert cells.is_displayed()
    assert len(cells.find_elements(By.CSS_SELECTOR, "tbody tr")) == len(data["methods"]["best"]["cells"])
    summary = drill.find_element(By.CSS_SELECTOR, "details summary")
    summary.click()
    assert drill.find_element(By.CSS_SELECTOR, "table.R").is_displayed()
    assert drill.find_element(By.CSS_SELECTOR, "svg.spark").is_displayed()

    # no console errors, no request but the page itself
    errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert errors == []
    requests = [json.loads(e["message"])["message"] for e in driver.get_log("performance")]
    urls = {m["params"]["request"]["url"] for m in requests
            if m["method"] == "Network.requestWillBeSent"}
    assert urls == {uri}

    # a screenshot that is not blank
    shot = tmp_path / "leaderboard.png"
    driver.execute_script("window.scrollTo(0, 0)")
    assert driver.save_screenshot(str(shot))
    from PIL import Image

    image = Image.open(shot).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20)
    assert image.size[0] >= 800 and colours is not None and len(colours) > 50
    most = max(count for count, _ in colours)
    assert most < 0.97 * image.size[0] * image.size[1]  # not one colour with specks


def _requests(driver) -> set[str]:
    messages = [json.loads(e["message"])["message"] for e in driver.get_log("performance")]
    return {m["params"]["request"]["url"] for m in messages
            if m["method"] == "Network.requestWillBeSent"}


def _load(driver, uri) -> None:
    """Open `uri` and wait for the table its script builds: once (CI, 2026-12-07), a reload of
    the same page returned with no table yet. Where none comes, the browser's log says why."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(uri)
    try:
        WebDriverWait(driver, 30).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#board thead th"))
    except TimeoutException:
        pytest.fail(f"no table 30 s after loading {uri}; browser log: {driver.get_log('browser')}")


def test_v2_page_at_desktop_and_phone_width(v2_page):
    from selenium.webdriver.common.by import By

    driver, uri, data = v2_page
    for width in (1280, 390):
        driver.set_window_size(width, 1400)
        _load(driver, uri)
        heads = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#board thead th")]
        assert heads[:3] == ["rank", "method", "ACC (content) [95% CI]"]
        assert "format" in heads and "learned items" in heads and "truncated" in heads
        sdft = driver.find_element(By.CSS_SELECTOR, '#board tr[data-method="sdft"]')
        assert "truncated 80%" in sdft.find_element(By.CSS_SELECTOR, "td.name").text
        assert "80% at max_new_tokens 64" in sdft.find_element(By.CSS_SELECTOR, "td.trunc").text
        # the legend is text on the page, not a tooltip: displayed without hovering
        legend = driver.find_element(By.ID, "legend")
        assert legend.is_displayed()
        assert "ACC under the strict scoring" in legend.text  # what "format" means
        assert "sdft: 80% of its generations hit the token budget" in legend.text
        assert driver.find_element(By.ID, "lead").text == data["summary"]
        # every significant pair, by the better method, right after the table
        found = data["views"]["all"]["metrics"][data["settings"]["default_metric"]]["significant"]
        section = driver.find_element(By.ID, "significant")
        assert found and section.is_displayed()
        terms = [t.text for t in section.find_elements(By.CSS_SELECTOR, "dt")]
        assert sorted(terms) == sorted({d["better"] for d in found})
        listed = [d.text for d in section.find_elements(By.CSS_SELECTOR, "dd")]
        assert sum(text.count(" (") for text in listed) == len(found)
        streams = driver.find_element(By.ID, "streams").text
        assert "s1: t1, then t2" in streams
        assert "harness submit" in driver.find_element(By.ID, "submit").text
        # the table comes before the statistics explanation, in the DOM and on screen
        below = driver.execute_script(
            "var t = document.getElementById('board'), n = document.getElementById('note');"
            "return [t.compareDocumentPosition(n) & Node.DOCUMENT_POSITION_FOLLOWING,"
            " t.getBoundingClientRect().bottom <= n.getBoundingClientRect().top];")
        assert below == [Node_FOLLOWING, True]
        # no horizontal page scroll; rank, method and the ranking metric fit the screen
        fits = driver.execute_script(
            "var s = document.querySelector('#board th[data-key=score]').getBoundingClientRect();"
            "return [document.documentElement.scrollWidth <= window.innerWidth,"
            " s.right <= window.innerWidth];")
        assert fits == [True, True], width
        assert _requests(driver) == {uri}  # nothing remote, nothing but the page
    # a duplicate column is unchecked by default and says which column it repeats
    dup = [m for m in data["metrics"] if "duplicates" in m]
    for m in dup:
        box = driver.find_element(By.CSS_SELECTOR, f'#shown input[value="{m["key"]}"]')
        assert not box.is_selected()


Node_FOLLOWING = 4  # Node.DOCUMENT_POSITION_FOLLOWING
