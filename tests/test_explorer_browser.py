"""The gamma explorer in a real browser: JupyterLab on 127.0.0.1 driven by headless Chromium.

JupyterLab serves a temporary root holding one small notebook that loads the stand-in
VGG-16 and calls ``explore``; Debian's Chromium (``chromium``, ``chromium-driver``; `make test`
installs them) opens it, runs all cells, sets a gamma slider through its readout and checks
that the heatmap was redrawn. The page is saved to artifacts/explorer.png.
"""

import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import chromium
import nbformat
import pytest
from selenium.common.exceptions import (
    ElementClickInterceptedException,
    NoSuchElementException,
    TimeoutException,
)
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[1]
ARTIFACT = ROOT / "artifacts" / "explorer.png"

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The PNG bytes behind the heatmap image (its src is a blob: URL made by ipywidgets).
IMAGE_BYTES = """
const done = arguments[arguments.length - 1];
const img = document.querySelector('img.widget-image');
if (!img || !img.src) { done(null); return; }
fetch(img.src).then(r => r.arrayBuffer()).then(b => {
  let s = ''; for (const x of new Uint8Array(b)) s += String.fromCharCode(x);
  done([img.src, btoa(s)]);
}).catch(e => done(null));
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _notebook(path, castle):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import utils\nfrom lrpkit.explorer import explore\n\n"
            f"X = utils.normalize(utils.load_image({str(castle)!r}))\n"
            "model = utils.load_vgg16()  # VGG16_WEIGHTS=standin in the server's environment"
        ),
        nbformat.v4.new_code_cell("explore(model, X)"),
    ]
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def lab(tmp_path_factory, castle_file):
    """JupyterLab on 127.0.0.1 (random port, token), serving a temporary root; its URL base."""
    tmp_path = tmp_path_factory.mktemp("lab")
    root, config = tmp_path / "root", tmp_path / "config"
    root.mkdir()
    (config / "labconfig").mkdir(parents=True)
    # Nothing reaches the network: no news feed, no update check, no PyPI extension manager,
    # no announcements plugin.
    (config / "jupyter_server_config.json").write_text(
        json.dumps(
            {
                "LabApp": {
                    "news_url": None,
                    "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                    "extension_manager": "readonly",
                }
            }
        )
    )
    (config / "labconfig" / "page_config.json").write_text(
        json.dumps(
            {
                "disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True},
            }
        )
    )
    _notebook(root / "explorer.ipynb", castle_file)
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "VGG16_WEIGHTS": "standin",
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "IPYTHONDIR": str(tmp_path / "ipython"),
        "MPLBACKEND": "Agg",
    }
    log = open(tmp_path / "lab.log", "wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
            *(["--allow-root"] if os.geteuid() == 0 else []),  # CI containers run as root
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited: {(tmp_path / 'lab.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not answer within 90 s")
                time.sleep(0.5)
        yield base, token
    finally:
        # Polite stop first (shuts the kernel down), then the process group, bounded.
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)
        log.close()


@pytest.fixture
def browser(tmp_path):
    """Headless Debian Chromium (tests/chromium.py), with a fresh profile."""
    driver = chromium.driver(tmp_path, "1400,1300")
    try:
        yield driver
    finally:
        driver.quit()


def _accept_dialogs(driver):
    """JupyterLab may ask which kernel to start: take the proposed one (python3)."""
    for button in driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog .jp-mod-accept"):
        button.click()


def _kernel_idle(base, token):
    """Whether the server has an idle kernel session for explorer.ipynb."""
    with urllib.request.urlopen(f"{base}/api/sessions?token={token}", timeout=5) as response:
        sessions = json.load(response)
    return any(
        s["path"].endswith("explorer.ipynb") and s["kernel"]["execution_state"] == "idle"
        for s in sessions
    )


def _run_all(driver, base, token, timeout=120):
    """Run > Run All Cells once the kernel is idle; again if no cell started (click lost,
    or taken by something drawn over the menu, or the menu not there yet)."""
    label = "//div[contains(@class, 'lm-{}') and normalize-space(text())='{}']"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _accept_dialogs(driver)
        if not _kernel_idle(base, token):
            time.sleep(0.25)
            continue
        try:
            driver.find_element(By.XPATH, label.format("MenuBar-itemLabel", "Run")).click()
            driver.find_element(By.XPATH, label.format("Menu-itemLabel", "Run All Cells")).click()
            WebDriverWait(driver, 15).until(
                lambda d: d.execute_script(
                    "return [...document.querySelectorAll('.jp-InputArea-prompt')]"
                    ".some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))"
                )
            )
            return
        except (TimeoutException, ElementClickInterceptedException, NoSuchElementException):
            driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
            time.sleep(0.25)
    pytest.fail(f"the notebook's cells did not start running within {timeout} s")


@pytest.mark.parametrize("ui", ["lab", "notebook"])
def test_slider_redraws_heatmap(lab, browser, ui):
    """JupyterLab (/lab) and Notebook 7, the classic Notebook's successor (/notebooks)."""
    base, token = lab
    page = {"lab": "lab/tree", "notebook": "notebooks"}[ui]
    name = "explorer.png" if ui == "lab" else f"explorer-{ui}.png"
    try:
        _explore(browser, base, token, page, ARTIFACT.with_name(name))
    except Exception:
        ARTIFACT.parent.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACT.with_name(f"explorer-{ui}-failure.png")))
        raise


def _explore(driver, base, token, page, screenshot):
    driver.get(f"{base}/{page}/explorer.ipynb?token={token}")
    WebDriverWait(driver, 120).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, ".jp-Notebook .jp-Cell")),
        "the notebook did not open",
    )
    _run_all(driver, base, token)
    slow = WebDriverWait(driver, 300, poll_frequency=0.2)
    slow.until(
        lambda d: _accept_dialogs(d) or d.execute_async_script(IMAGE_BYTES),
        "the explorer did not show up",
    )
    src, before = driver.execute_async_script(IMAGE_BYTES)
    status = driver.find_element(By.XPATH, "//*[contains(text(), 'recomputed blocks')]")
    assert "recomputed blocks: 5, 4, 3, 2, 1 in" in status.text, status.text

    sliders = driver.find_elements(By.CSS_SELECTOR, ".widget-hslider")
    labels = [s.find_element(By.CSS_SELECTOR, ".widget-label").text for s in sliders]
    assert labels[:5] == [f"block {k} γ" for k in range(1, 6)], labels
    readout = sliders[0].find_element(By.CSS_SELECTOR, ".widget-readout")
    old = readout.text
    # Type the new gamma into the slider's readout (arrow keys on the handle work in
    # JupyterLab, but Notebook 7 keeps them for its own navigation).
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", readout)
    readout.click()
    ActionChains(driver).key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL).perform()
    ActionChains(driver).send_keys("2", Keys.ENTER).perform()
    WebDriverWait(driver, 20).until(lambda d: readout.text != old, "the slider did not move")

    def redrawn(d):
        now = d.execute_async_script(IMAGE_BYTES)
        return now if now and now[0] != src else False

    _, after = slow.until(redrawn, "the heatmap was not redrawn")
    toggle = driver.find_element(By.CSS_SELECTOR, ".widget-toggle-buttons")
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", toggle)
    screenshot.parent.mkdir(exist_ok=True)
    driver.save_screenshot(str(screenshot))
    assert base64.b64decode(after).startswith(b"\x89PNG")
    assert after != before, "the heatmap image is the same after the gamma change"
    status = driver.find_element(By.XPATH, "//*[contains(text(), 'recomputed blocks')]")
    assert "recomputed blocks: 1 in" in status.text, status.text  # block 1 only
    assert float(readout.text) == 2.0
