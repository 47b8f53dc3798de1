"""The page at / in a real headless browser (Debian's chromium driven by Playwright)."""

import shutil
import socket
import threading
import time

import pytest
import uvicorn

from serve.app import create_app
from serve.settings import Settings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed "
                                 "(pip install -e '.[dev]')")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(trained_model_dir):
    port = free_port()
    config = uvicorn.Config(create_app(Settings(models=str(trained_model_dir))),
                            host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.skipif(not shutil.which("chromium") and not shutil.which("/usr/bin/chromium"),
                    reason="chromium is not installed (apt-get install chromium)")
def test_page_translates_and_shows_attention(server):
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-background-networking", "--disable-gpu"])
        page = browser.new_page()
        page.goto(server + "/")
        page.wait_for_function("document.querySelectorAll('#source option').length > 0")
        assert page.input_value("#source") == "de" and page.input_value("#target") == "en"
        page.fill("#input", "Ein hund läuft im park.")
        page.click("#translate")
        page.wait_for_function("document.querySelector('#output').textContent.length > 0")
        assert page.text_content("#output").lower().startswith("a dog")
        cells = page.locator("#heatmap td")
        assert cells.count() > 4
        rows = page.locator("#heatmap tr").count() - 1
        assert rows == len(page.text_content("#output").split()) or rows > 1
        linked = page.locator("#links td.linked")
        assert linked.count() >= 3  # each output word linked to a source word
        assert page.locator("#links tr").count() - 1 == len(page.text_content("#output").split())
        assert page.text_content("#error") == ""
        browser.close()
