"""The search page in a real headless Chromium (selenium), served by uvicorn on 127.0.0.1.

Opens the page, types a query, waits until every result image has loaded (``naturalWidth >
0``), checks the word-share bars, clicks the first result and waits for its similar images
and tags. Saves a screenshot (to ``$SEMSEARCH_SCREENSHOT`` when set, else the test's temp
folder). Skips, saying why, where selenium, Chromium or chromedriver is missing
(``apt-get install chromium chromium-driver``; ``.ci/run`` installs them).
"""
from __future__ import annotations

import os
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from web_helpers import Args, build_real_bundle

QUERY = "people skiing down a snowy hill"


def _browser_paths():
    binary = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    driver = shutil.which("chromedriver")
    return binary, driver


@pytest.fixture(scope="module")
def browser():
    pytest.importorskip("selenium", reason="selenium is not installed: pip install 'semsearch[web,test]'")
    binary, driver = _browser_paths()
    if binary is None or driver is None:
        pytest.skip("no Chromium or chromedriver on this machine: apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1640", "--hide-scrollbars"):
        options.add_argument(argument)
    driver_ = webdriver.Chrome(service=Service(driver), options=options)
    yield driver_
    driver_.quit()


@pytest.fixture(scope="module")
def server(real_data, tmp_path_factory):
    """uvicorn serving a briefly trained model of the 239 real images; yields its base URL."""
    uvicorn = pytest.importorskip("uvicorn", reason="the web extra is not installed: pip install 'semsearch[web]'")
    from semsearch.web.serve import app_from_args

    bundle = build_real_bundle(real_data, tmp_path_factory.mktemp("bundle") / "model", epochs=15)
    app = app_from_args(Args(bundle, real_data), say=lambda line: None)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    instance = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not instance.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start within 20 s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(timeout=10)


def _loaded_images(driver, selector: str):
    """naturalWidth of each image under ``selector``, once all have finished loading (else None)."""
    return driver.execute_script(
        "const imgs = [...document.querySelectorAll(arguments[0])];"
        "return imgs.length && imgs.every(i => i.complete) ? imgs.map(i => i.naturalWidth) : null;",
        selector,
    )


def test_search_click_and_similar_in_chromium(browser, server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30)
    browser.get(server + "/")
    wait.until(lambda d: "239 images" in d.find_element(By.ID, "status").text)
    box = browser.find_element(By.ID, "q")
    box.send_keys(QUERY)
    k = browser.find_element(By.ID, "k")
    k.clear()
    k.send_keys("8")
    browser.find_element(By.CSS_SELECTOR, "#search-form button").click()

    widths = wait.until(lambda d: _loaded_images(d, "#results .result img"))
    assert len(widths) == 8 and all(w > 0 for w in widths), widths  # every result image really loaded
    cards = browser.find_elements(By.CSS_SELECTOR, "#results .result")
    assert all(c.find_element(By.CSS_SELECTOR, ".score").text for c in cards)
    assert all(c.find_elements(By.CSS_SELECTOR, ".caption") for c in cards)  # COCO images have captions
    words = [w.text for w in cards[0].find_elements(By.CSS_SELECTOR, ".why .word")]
    assert words == ["people", "skiing", "down", "a", "snowy", "hill"]  # one share per query word
    assert browser.find_element(By.ID, "message").text == ""  # every word known

    first_key = cards[0].get_attribute("data-key")
    cards[0].click()
    similar = wait.until(lambda d: _loaded_images(d, "#similar .result img"))
    assert len(similar) == 8 and all(w > 0 for w in similar)
    similar_keys = [c.get_attribute("data-key") for c in browser.find_elements(By.CSS_SELECTOR, "#similar .result")]
    assert first_key not in similar_keys and len(set(similar_keys)) == 8
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#tags li")) == 10)
    assert browser.find_element(By.ID, "detail-title").text == first_key
    assert browser.execute_script("return document.getElementById('detail-image').naturalWidth") > 0

    browser.execute_script("window.scrollTo(0, 0)")
    target = Path(os.environ.get("SEMSEARCH_SCREENSHOT") or tmp_path / "page.png")
    target.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(target)) and target.stat().st_size > 10_000

    # clicking a tag searches again among the images carrying it; the clicked image is one of them
    chip = browser.find_elements(By.CSS_SELECTOR, "#tags li")[0]
    tag = chip.text.rsplit(" ", 1)[0] if chip.get_attribute("class") == "label" else chip.text
    chip.click()
    wait.until(lambda d: f'only images tagged "{tag}"' in d.find_element(By.ID, "message").text)
    assert browser.find_element(By.ID, "tag").get_attribute("value") == tag
    wait.until(lambda d: first_key in [c.get_attribute("data-key") for c in d.find_elements(By.CSS_SELECTOR, "#results .result")])


def test_unknown_words_are_shown(browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30)
    browser.get(server + "/?q=" + "qwzx%20blorft")  # the page runs a query from its URL
    # "searching…" shows first; wait for the answer, which must name both unknown words
    message = wait.until(lambda d: (lambda text: text if text and "searching" not in text else None)(
        d.find_element(By.ID, "message").text))
    assert "qwzx" in message and "blorft" in message, message
    assert browser.find_elements(By.CSS_SELECTOR, "#results .result") == []
