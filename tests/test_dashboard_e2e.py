"""The dashboard for real: `hybridlens dashboard` on a loopback port, driven by headless
Chromium through Playwright, the way a person would click through it.

Skipped with a reason where /usr/bin/chromium is absent (never `playwright install`).
Screenshots of every page are kept under the test's temporary directory.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_support import Scenario, copy_scenario

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TITLES = {"Fleet overview", "Environments", "GPUs", "Spend"}

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the dashboard exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"the dashboard did not answer within {limit_s:.0f} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def server(built_scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("e2e")
    scenario = copy_scenario(built_scenario, root)
    port = free_port()
    log = root / "server.log"
    env = {k: v for k, v in os.environ.items() if k != "HYBRIDLENS_CONFIG"}
    command = [
        str(Path(sys.executable).with_name("hybridlens")),
        "dashboard",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--warehouse",
        str(scenario.warehouse.path),
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, proc, log, limit_s=60)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the CLI and the streamlit it started
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def settle(page: Any) -> None:
    """Wait for the page's title, its first chart, and Streamlit to stop running."""
    page.wait_for_selector("h1", timeout=60_000)
    page.wait_for_selector("[data-testid='stPlotlyChart'] .main-svg", timeout=60_000)
    page.wait_for_function(
        "() => !document.querySelector(\"[data-testid='stStatusWidget']\")", timeout=60_000
    )
    page.wait_for_timeout(500)  # the charts are drawn (above): let them paint


def test_every_page_from_the_sidebar_renders(
    server: str, browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    shots = tmp_path_factory.mktemp("screenshots")
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.goto(server, timeout=60_000)
    settle(page)
    links = page.locator("[data-testid='stSidebarNav'] a")
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    assert len(hrefs) == len(TITLES), hrefs
    seen = set()
    for i, href in enumerate(hrefs):
        assert href
        page.goto(href if href.startswith("http") else server + "/" + href.lstrip("/"))
        settle(page)
        title = page.locator("h1").first.inner_text().strip()
        seen.add(title)
        page.screenshot(path=str(shots / f"{i:02d}-{title.replace(' ', '-')}.png"), full_page=True)
        assert page.locator("[data-testid='stException']").count() == 0, title
        assert page.locator("[data-testid='stPlotlyChart']").count() >= 1, title
        assert page.locator("[data-testid='stMetric']").count() >= 5, title
    assert seen == TITLES
    print(f"screenshots in {shots}")


def test_filters_live_in_the_url_and_follow_the_navigation(server: str, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.goto(server + "/?env=gcp-europe-west4", timeout=60_000)
    settle(page)
    sidebar = page.locator("[data-testid='stSidebar']")
    assert "gcp-europe-west4" in sidebar.locator("[data-testid='stMultiSelect']").first.inner_text()
    page.locator("[data-testid='stSidebarNav'] a", has_text="Environments").click()
    page.wait_for_url("**/environments?**", timeout=30_000)
    settle(page)
    assert "env=gcp-europe-west4" in page.url
    main = page.locator("[data-testid='stMain']")
    assert "gcp · europe-west4" in main.inner_text()  # the focused environment's caption

    # Ten days of data are drawn per hour by default; a change of resolution writes the URL.
    assert "Latency per hour" in page.locator("[data-testid='stPlotlyChart']").first.inner_text()
    page.get_by_role("radio", name="day", exact=True).click()
    page.wait_for_function("() => location.search.includes('res=day')", timeout=30_000)
    settle(page)
    assert page.locator("[data-testid='stException']").count() == 0
    assert "Latency per day" in page.locator("[data-testid='stPlotlyChart']").first.inner_text()
    assert "env=gcp-europe-west4" in page.url


def test_the_demo_serves_pages_while_it_loads(
    tmp_path: Path, browser: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """`hybridlens demo` answers within seconds with the days loaded so far and a banner
    saying how many are left; the page takes in the rest by itself and the banner goes."""
    port = free_port()
    log = tmp_path / "demo.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYBRIDLENS_")}
    command = [
        str(Path(sys.executable).with_name("hybridlens")),
        "demo", "--days", "3", "--scale", "0.1", "--data", "d", "--warehouse", "w.duckdb",
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, proc, log, limit_s=60)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.goto(url, timeout=60_000)
        page.wait_for_selector("[data-testid='stMetric']", timeout=60_000)
        first_data = time.monotonic() - started
        main = page.locator("[data-testid='stMain']")
        text = main.inner_text()
        record = json.loads((tmp_path / "w.duckdb.progress.json").read_text())
        if record["state"] == "loading":  # the banner names only what is loaded
            assert "Loading the demo scenario:" in text and "of 3 days loaded" in text, text
        page.wait_for_function(
            "() => !document.body.innerText.includes('Loading the demo scenario')",
            timeout=180_000,
        )
        full = time.monotonic() - started
        assert json.loads((tmp_path / "w.duckdb.progress.json").read_text())["state"] == "done"
        assert page.locator("[data-testid='stException']").count() == 0
        with capsys.disabled():
            print(f"\ndemo: first page with data {first_data:.1f} s, banner gone {full:.1f} s")
        assert first_data < 60, f"the first page with data took {first_data:.0f} s"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the CLI, the generator and streamlit
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
