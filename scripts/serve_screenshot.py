"""The README's screenshot of `semsearch serve`: the embedded sample, a query, a clicked result.

Run by hand (needs the `web` extra, selenium, and Debian's `chromium` + `chromium-driver`)::

    python scripts/serve_screenshot.py docs/serve-page.png

It serves the embedded sample (only images whose licence allows redistribution) with uvicorn
on 127.0.0.1, opens the page in headless Chromium, searches, clicks the first result, waits
until every image has loaded, and saves the page as a PNG.
"""
from __future__ import annotations

import argparse
import shutil
import socket
import threading
import time
from pathlib import Path
from types import SimpleNamespace


def serve_sample():
    """uvicorn serving the embedded sample on a free loopback port: ``(server, base URL)``."""
    import uvicorn

    from semsearch.web.serve import app_from_args

    args = SimpleNamespace(db=None, model=None, images=None, captions=None, data=None)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app_from_args(args, say=print), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def wait_for_images(driver, selector: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    script = ("const i = [...document.querySelectorAll(arguments[0])];"
              "return i.length > 0 && i.every(x => x.complete && x.naturalWidth > 0);")
    while not driver.execute_script(script, selector):
        if time.monotonic() > deadline:
            raise TimeoutError(f"images {selector!r} did not load within {timeout} s")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="PNG to write")
    parser.add_argument("--query", default="people skiing down a snowy hill")
    parser.add_argument("-k", type=int, default=8)
    args = parser.parse_args()

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    server, url = serve_sample()
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=960,1500", "--hide-scrollbars"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(url)
        box = driver.find_element(By.ID, "q")
        box.clear()
        box.send_keys(args.query)
        k = driver.find_element(By.ID, "k")
        k.clear()
        k.send_keys(str(args.k))
        driver.find_element(By.CSS_SELECTOR, "#search-form button").click()
        wait_for_images(driver, "#results img")
        driver.find_elements(By.CSS_SELECTOR, "#results img")[0].click()
        wait_for_images(driver, "#detail img")
        time.sleep(0.5)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(args.out))
        print(f"wrote {args.out}")
    finally:
        driver.quit()
        server.should_exit = True


if __name__ == "__main__":
    main()
