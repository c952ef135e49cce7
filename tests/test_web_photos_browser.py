"""The page's photo parts in headless Chromium: filters, dates and folders, marks and 'search again', duplicates."""
from __future__ import annotations

import shutil
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from photo_helpers import FakeBackbone, fake_model, holiday_folder
from test_web_browser import browser  # noqa: F401 - the shared Chromium fixture


@pytest.fixture(scope="module")
def photo_server(real_data, tmp_path_factory):
    uvicorn = pytest.importorskip("uvicorn", reason="the web extra is not installed: pip install 'semsearch[web]'")
    from semsearch.photos.folder import index_folder
    from semsearch.web.serve import app_from_args
    from web_helpers import Args

    root = tmp_path_factory.mktemp("page") / "Pictures"
    holiday_folder(real_data, root)
    shutil.copy(root / "2020" / "IMG_0.JPG", root / "2020" / "IMG_0 copy.JPG")
    db = root / ".semsearch" / "photos.npz"
    index_folder(root, db, model=fake_model(tmp_path_factory.mktemp("model")), backbone=FakeBackbone(), progress=False)
    app = app_from_args(Args(None, None, db=db), say=lambda line: None)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_filters_marks_and_duplicates_on_the_page(browser, photo_server):  # noqa: F811 - the fixture
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30)
    browser.get(photo_server + "/")
    wait.until(lambda d: d.find_elements(By.ID, "filters"))
    browser.find_element(By.ID, "q").send_keys("a dog")
    browser.find_element(By.ID, "f-folder").send_keys("scans")
    browser.find_element(By.CSS_SELECTOR, "#search-form button").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .result")) == 4)
    captions = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#results .result .caption")]
    assert all(c == "2018-03-01 12:00 (file date) · scans" for c in captions), captions
    assert 'in folder "scans"' in browser.find_element(By.ID, "message").text

    browser.find_element(By.ID, "f-folder").clear()
    browser.find_element(By.CSS_SELECTOR, "#search-form button").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .result")) == 9)
    cards = browser.find_elements(By.CSS_SELECTOR, "#results .result")
    assert browser.find_element(By.ID, "again").get_attribute("hidden") is not None
    cards[5].find_element(By.CSS_SELECTOR, ".mark.good").click()
    cards[0].find_element(By.CSS_SELECTOR, ".mark.bad").click()
    assert "good" in cards[5].get_attribute("class") and "bad" in cards[0].get_attribute("class")
    assert not browser.find_elements(By.CSS_SELECTOR, "#detail:not([hidden])")  # marking opens no detail
    browser.find_element(By.ID, "again").click()
    message = wait.until(lambda d: (lambda t: t if t.startswith("moved toward 1 and away from 1") else None)(
        d.find_element(By.ID, "message").text))
    assert "new (outlined)" in message

    browser.find_element(By.ID, "show-duplicates").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".dup-group"))
    groups = [g.text for g in browser.find_elements(By.CSS_SELECTOR, ".dup-group")]
    assert any("2020/IMG_0.JPG" in g and "2020/IMG_0 copy.JPG" in g for g in groups)
    assert "nothing is deleted" in browser.find_element(By.ID, "message").text
