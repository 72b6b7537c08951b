"""report.html and a feedback page in a real browser: headless Chromium over file:// URLs.

The class of conftest.class_run (one grading run, shared with test_class_report.py) is
opened as an instructor opens it: report.html from the output folder, then a student's
feedback page through the link in their row. What the browser shows is checked against
grades.csv: the summary numbers, the count per status, the pass rates, every student's row;
that the plots are drawn (SVG with a size) and that no request leaves the file. The pages
are saved to artifacts/report.png and artifacts/feedback.png (Debian's ``chromium`` and
``chromium-driver``, as tests/test_explorer_browser.py uses them; `make test` installs them).
"""

import base64
import statistics
from pathlib import Path

import chromium
import pytest
from crafting import read_csv
from selenium.webdriver.common.by import By

from lrpkit.grading.results.feedback import number

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
#: the URLs of every resource the page loaded (a self-contained page loads only itself)
RESOURCES = "return performance.getEntriesByType('resource').map(e => e.name)"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Debian Chromium (tests/chromium.py), with a fresh profile."""
    driver = chromium.driver(tmp_path_factory.mktemp("chromium"), "1400,1000", "--hide-scrollbars")
    try:
        yield driver
    finally:
        driver.quit()


def full_page_screenshot(driver, path):
    """The whole page, not just the window (Chromium's DevTools: beyond the viewport)."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))


def cells(table):
    return [
        [cell.text for cell in row.find_elements(By.CSS_SELECTOR, "td, th")]
        for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")
    ]


def test_the_report_and_a_feedback_page_in_chromium(class_run, browser):
    out = class_run.out
    rows = read_csv(out / "grades.csv")
    browser.get((out / "report.html").as_uri())
    try:
        check_report(browser, rows)
        full_page_screenshot(browser, ARTIFACTS / "report.png")
        # the instructor opens the page of a student with a failed check and an error in a
        # cell of their own, through the link in the student's row
        table = browser.find_element(By.ID, "students")
        link = table.find_element(By.LINK_TEXT, "raises")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)
        link.click()
        check_feedback(browser, rows["raises"], "raises")
        browser.set_window_size(1100, 1000)
        full_page_screenshot(browser, ARTIFACTS / "feedback.png")
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "report-failure.png"))
        raise


def check_report(browser, rows):
    assert browser.title == "Class report"
    totals = [float(row["total"]) for row in rows.values() if row["total"] != ""]
    text = {key: browser.find_element(By.ID, key).text for key in ("submissions", "mean", "median")}
    assert text == {
        "submissions": str(len(rows)),
        "mean": number(statistics.fmean(totals)),
        "median": number(statistics.median(totals)),
    }
    counts = {}
    for row in rows.values():
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    shown = {status: int(n) for status, n in cells(browser.find_element(By.ID, "statuses"))}
    assert shown == counts
    for check, points, passed, of, rate in cells(browser.find_element(By.ID, "pass-rates")):
        earned = sum(float(row[check]) == float(points) for row in rows.values())
        assert (int(passed), int(of)) == (earned, len(totals)), check
        assert rate == f"{earned / len(totals):.0%}"
    students = {line[0]: line for line in cells(browser.find_element(By.ID, "students"))}
    assert sorted(students) == sorted(rows)
    for student, row in rows.items():
        assert students[student][1] == row["total"] and students[student][4] == row["status"]
    # the plots are drawn, with a size on the page
    plots = browser.find_elements(By.CSS_SELECTOR, "section svg")
    assert len(plots) == 3 and all(p.size["width"] > 200 and p.size["height"] > 100 for p in plots)
    # the planted copies are listed; opening one shows the shared lines side by side
    pairs = browser.find_elements(By.CSS_SELECTOR, "details.pair")
    assert len(pairs) >= 9
    pairs[0].find_element(By.TAG_NAME, "summary").click()
    shared = pairs[0].find_elements(By.CSS_SELECTOR, "table.side-by-side tbody tr")
    assert (
        shared
        and shared[0].is_displayed()
        and len(shared[0].find_elements(By.TAG_NAME, "pre")) == 2
    )
    assert all(url.startswith("file://") for url in browser.execute_script(RESOURCES))


def check_feedback(browser, row, student):
    assert browser.current_url.endswith(f"/feedback/{student}.html")
    assert browser.find_element(By.TAG_NAME, "h1").text == f"Feedback for {student}"
    points = cells(browser.find_element(By.ID, "points"))
    assert points[0][1:] == [row["ex3"], "25"] and points[1][1:] == [row["ex4"], "25"]
    assert points[2][1:] == [row["total"], "50"]
    verdicts = []
    for exercise in ("ex3", "ex4"):
        for line in cells(browser.find_element(By.ID, f"checks-{exercise}")):
            name, earned, verdict, what, hint = line
            key = f"{exercise}.{name.split()[-1]}"  # "ex4 check 1\ncheck_conv"
            got, possible = earned.split(" / ")
            assert got == row[key] and (verdict == "PASS") == (got == possible), line
            assert verdict in ("PASS", "FAIL") and not what.startswith(("PASS", "FAIL"))
            assert bool(hint) == (verdict == "FAIL"), line
            verdicts.append(verdict)
    assert "FAIL" in verdicts and len(verdicts) == 4
    notes = browser.find_elements(By.CSS_SELECTOR, "li.note")
    assert notes and "# try another class" in notes[0].find_element(By.TAG_NAME, "pre").text
    assert "IndexError" in notes[0].text and "code cell" not in notes[0].text
    assert all(url.startswith("file://") for url in browser.execute_script(RESOURCES))
