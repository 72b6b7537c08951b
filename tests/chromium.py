"""Headless Debian Chromium for the browser tests (``chromium``, ``chromium-driver``; `make test`
installs them): tests/test_explorer_browser.py and tests/grading/test_class_report_browser.py."""

import shutil

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def driver(folder, window, *flags):
    """A headless Chromium driven through /usr/bin/chromedriver, with a fresh profile and
    chromedriver's log in ``folder``; ``window``: its size ("1400,1000"); ``flags``: more
    Chromium flags. The test fails, saying what to install, without them. Quit it after use."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not found: `make test` installs Debian's chromium and "
            "chromium-driver (apt-get install -y chromium chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, *flags, f"--window-size={window}", f"--user-data-dir={folder}/profile"]:
        options.add_argument(flag)
    service = Service(executable_path=CHROMEDRIVER, log_output=f"{folder}/chromedriver.log")
    started = webdriver.Chrome(options=options, service=service)
    started.set_page_load_timeout(60)
    started.set_script_timeout(30)
    return started
