"""The web page in a real browser: `podium up` with API keys (its web page beside the gateway),
Debian's chromium driven by selenium through chromedriver.

A folder of photographs is given to the page's file input, the job is watched to the end on
the page, and every result row must carry the label an independent PyTorch reference gives
the same photo, and equal the job's JSONL. Filters, pages, cancel, login and quick classify
are driven the same way. With PODIUM_SCREENSHOTS_DIR set, the pages are photographed there
(`make screenshots` puts them in docs/images/web for the README).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request
from pathlib import Path

import pytest
import torch

from podium import PodiumClient
from podium.cluster import ClusterSettings, LocalCluster
from podium.samples import write_photo_folder
from tests.integration.conftest import MODEL_NAME
from tests.support.cli import run_cli
from tests.support.labelled import labelled_for_the_fitted_checkpoint, mislabel
from tests.support.reference import build_resnet50, reference_predict

pytestmark = pytest.mark.integration

API_KEY = "web-test-key-1"
PHOTOS = 24
PAGE_SIZE = 10  # small, so that 25 rows make three pages
BROKEN = "broken.jpg"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
JOB_TIMEOUT_S = 240
SHOTS = os.environ.get("PODIUM_SCREENSHOTS_DIR", "")


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory) -> Path:
    """24 photographs side by side (the file input takes files, not folders) and one broken file."""
    made = write_photo_folder(tmp_path_factory.mktemp("made"), count=PHOTOS)
    flat = tmp_path_factory.mktemp("web-photos")
    for number, path in enumerate(made):
        shutil.copyfile(path, flat / f"{number:02d}-{path.name}")
    (flat / BROKEN).write_bytes(b"\xff\xd8\xff\xe0 this is not a whole JPEG")
    return flat


@pytest.fixture(scope="module")
def expected(checkpoint, photo_folder, web_cluster) -> dict[str, str]:
    """The PyTorch reference's top-1 of every photo, by file name, named as the model's class list does."""
    with PodiumClient(web_cluster.gateway_address, api_key=API_KEY) as client:
        labels = list(client.classes().classes)
    model = build_resnet50(torch.load(checkpoint, map_location="cpu", weights_only=True))
    paths = sorted(path for path in photo_folder.iterdir() if path.name != BROKEN)
    predicted = reference_predict(model, paths)
    return {path.name: labels[int(predicted[path].argmax())] for path in paths}


@pytest.fixture(scope="module")
def reports_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("reports")


@pytest.fixture(scope="module")
def web_cluster(model_repository, reports_dir, tmp_path_factory):
    settings = ClusterSettings(
        model_repository=model_repository,
        workers=2,
        gateway_port=0,
        web_port=0,
        run_dir=tmp_path_factory.mktemp("web-cluster"),
        service={"model_name": MODEL_NAME, "api_keys": API_KEY, "decode": "exact", "result_cache": False},
    )
    # Read by the web child at its start.
    page = {"PODIUM_WEB_PAGE_SIZE": str(PAGE_SIZE), "PODIUM_WEB_REPORTS_DIR": str(reports_dir)}
    before = {name: os.environ.get(name) for name in page}
    os.environ.update(page)
    try:
        cluster = LocalCluster(settings)
        cluster.start()
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name)
            else:
                os.environ[name] = value
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def browser():
    """A fresh headless chromium per test: no cookie or console line carries over."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    if missing:
        pytest.fail(f"{' and '.join(missing)} missing: `make setup` installs chromium and chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1366,768"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(condition, timeout_s: float = 30, what: str = "the page"):
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = condition()
        except Exception:  # noqa: BLE001 - a page mid-load: try again
            value = None
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def by_testid(driver, testid: str):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]')


def shot(driver, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SHOTS) / f"{name}.png"))


def console_errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def log_in(driver, base: str, key: str) -> None:
    driver.get(base + "/")
    wait_for(lambda: by_testid(driver, "api-key-input"), what="the login form")
    by_testid(driver, "api-key-input")[0].send_keys(key)
    by_testid(driver, "api-key-submit")[0].click()


def rows_of(driver) -> list[tuple[str, str]]:
    return [
        (row.get_attribute("data-path"), row.get_attribute("data-label")) for row in by_testid(driver, "result-row")
    ]


def all_rows(driver, url: str) -> list[tuple[str, str]]:
    """Every result row of a job page, following its pages."""
    driver.get(url)
    found = []
    while True:
        wait_for(lambda: by_testid(driver, "result-count"), what="the results")
        found += rows_of(driver)
        following = by_testid(driver, "page-next")
        if not following:
            return found
        following[0].click()
        time.sleep(0.2)


def jsonl(driver, base: str, job_id: str) -> list[dict]:
    """The job's JSONL download, fetched with the browser's session cookie."""
    cookie = driver.get_cookie("podium_session")["value"]
    request = urllib.request.Request(
        f"{base}/jobs/{job_id}/results.jsonl", headers={"Cookie": f"podium_session={cookie}"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return [json.loads(line) for line in answer.read().decode().splitlines()]


def test_a_wrong_key_is_refused_and_nothing_is_shown(web_cluster, browser):
    base = web_cluster.web_url
    log_in(browser, base, "not-the-key")
    wait_for(lambda: by_testid(browser, "login-error"), what="the refusal")
    assert "/login" in browser.current_url
    shot(browser, "login-refused")
    browser.get(base + "/jobs")  # still not logged in: back to the form
    wait_for(lambda: by_testid(browser, "api-key-input"), what="the login form again")
    assert not by_testid(browser, "job-row")


def test_upload_watch_and_browse_a_folder(web_cluster, browser, photo_folder, expected):
    base = web_cluster.web_url
    log_in(browser, base, API_KEY)
    wait_for(lambda: by_testid(browser, "upload-input"), what="the upload form")
    assert API_KEY not in browser.page_source and API_KEY not in browser.current_url
    cookie = browser.get_cookie("podium_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and API_KEY not in cookie["value"]

    files = sorted(photo_folder.iterdir())
    by_testid(browser, "upload-input")[0].send_keys("\n".join(str(path) for path in files))
    browser.find_element("id", "job-name").send_keys("web test")
    browser.find_element("id", "explain").click()
    shot(browser, "upload")
    by_testid(browser, "upload-submit")[0].click()
    wait_for(lambda: "/jobs/" in browser.current_url, what="the job page")
    job_id = browser.current_url.rstrip("/").split("/")[-1]
    assert len(job_id) == 32
    states = set()

    def completed() -> bool:
        state = by_testid(browser, "job-state")[0].text
        states.add(state)
        return state == "completed"

    wait_for(completed, JOB_TIMEOUT_S, "the job to complete on the page")
    assert states <= {"uploading", "running", "completed"}, states
    progress = by_testid(browser, "job-progress")[0]
    assert progress.get_attribute("value") == progress.get_attribute("max") == str(len(files))
    shot(browser, "job")

    rows = all_rows(browser, f"{base}/jobs/{job_id}")
    assert len(rows) == len(files) == PHOTOS + 1
    labels = dict(rows)
    assert set(labels) == {path.name for path in files}
    assert {name: labels[name] for name in expected} == expected  # the page's top-1 is PyTorch's
    assert labels[BROKEN] == ""
    # The grid equals the JSONL of the same job, image by image.
    records = jsonl(browser, base, job_id)
    assert {r["path"]: (r["top_k"][0]["label"] if r["top_k"] else "") for r in records} == labels
    assert all("cam" in r for r in records if r["status"] == "ok")

    # Filters: one label, errors only, a minimum probability; sorting keeps every row.
    label = max(set(expected.values()), key=list(expected.values()).count)
    browser.get(f"{base}/jobs/{job_id}?label={urllib.request.quote(label)}")
    wait_for(lambda: by_testid(browser, "result-count"))
    kept = rows_of(browser)
    assert kept and {found for _, found in kept} == {label}
    assert len(kept) == min(PAGE_SIZE, list(expected.values()).count(label))
    browser.get(f"{base}/jobs/{job_id}?errors=1")
    wait_for(lambda: by_testid(browser, "result-count"))
    assert rows_of(browser) == [(BROKEN, "")]
    assert by_testid(browser, "result-error")[0].text  # the reason, in red
    top = {r["path"]: r["top_k"][0]["probability"] for r in records if r["status"] == "ok"}
    threshold = sorted(top.values())[len(top) // 2]
    confident = {path for path, p in top.items() if p >= threshold}
    assert set(dict(all_rows(browser, f"{base}/jobs/{job_id}?min_probability={threshold}"))) == confident
    assert sorted(all_rows(browser, f"{base}/jobs/{job_id}?sort=confident")) == sorted(rows)

    # The job on /jobs, and the maps drawn over the thumbnails.
    browser.get(f"{base}/jobs")
    wait_for(lambda: by_testid(browser, "job-row"), what="the jobs list")
    assert job_id in {row.get_attribute("data-job-id") for row in by_testid(browser, "job-row")}
    shot(browser, "jobs")
    browser.get(f"{base}/jobs/{job_id}?sort=confident")
    wait_for(lambda: by_testid(browser, "result-row"))
    assert len(browser.find_elements("css selector", "canvas.cam")) == min(PAGE_SIZE, PHOTOS)
    loaded = browser.execute_script(
        "return [...document.querySelectorAll('.thumb img')].filter(i => i.complete && i.naturalWidth > 0)"
        ".map(i => i.currentSrc.endsWith('.jpg') ? i.naturalWidth : 0)"
    )
    assert loaded and all(width == 160 for width in loaded), loaded  # real thumbnails, not placeholders
    shot(browser, "results")
    browser.set_window_size(390, 844)
    browser.get(f"{base}/jobs/{job_id}")
    wait_for(lambda: by_testid(browser, "result-row"))
    shot(browser, "phone")
    browser.set_window_size(1366, 768)
    assert console_errors(browser) == []


def test_cancel_from_the_page(web_cluster, browser, photo_folder, tmp_path):
    """A job far too long to end by itself during the test; the page's cancel ends it."""
    big = tmp_path / "big"
    photos = [path for path in photo_folder.iterdir() if path.name != BROKEN]
    for copy in range(15):
        (big / f"copy{copy:02d}").mkdir(parents=True)
        for path in photos:
            shutil.copyfile(path, big / f"copy{copy:02d}" / path.name)
    with PodiumClient(web_cluster.gateway_address, api_key=API_KEY) as client:
        job = client.submit_folder(big, name="to cancel")
        log_in(browser, web_cluster.web_url, API_KEY)
        wait_for(lambda: by_testid(browser, "upload-input"))
        browser.get(f"{web_cluster.web_url}/jobs/{job.id}")
        wait_for(lambda: by_testid(browser, "job-cancel"), what="the cancel button")
        by_testid(browser, "job-cancel")[0].click()
        wait_for(lambda: by_testid(browser, "job-state")[0].text == "cancelled", 60, "the cancelled state")
        ended = client.get_job(job.id)
    assert ended.state == 4 and ended.succeeded + ended.failed < ended.total == len(photos) * 15


def test_quick_classify_and_status(web_cluster, browser, photo_folder, expected):
    log_in(browser, web_cluster.web_url, API_KEY)
    wait_for(lambda: by_testid(browser, "upload-input"))
    browser.get(web_cluster.web_url + "/classify")
    name, label = min(expected.items())
    by_testid(browser, "classify-input")[0].send_keys(str(photo_folder / name))
    wait_for(lambda: len(by_testid(browser, "classify-top")[0].find_elements("css selector", "li")) == 3)
    first = by_testid(browser, "classify-top")[0].find_elements("css selector", "li .label")[0].text
    assert first == label
    shot(browser, "classify")
    browser.get(web_cluster.web_url + "/status")
    wait_for(lambda: by_testid(browser, "gateway-health"))
    assert by_testid(browser, "gateway-health")[0].text == "serving"
    assert by_testid(browser, "model-health")[0].text == "ready"
    assert by_testid(browser, "redis-health")[0].text == "ok"
    assert by_testid(browser, "workers-health")[0].text == "2 answering"
    shot(browser, "status")
    assert console_errors(browser) == []


def test_an_evaluation_report_on_the_page(web_cluster, browser, reports_dir, tmp_path):
    """`podium evaluate` through the same gateway; the page shows its report as written."""
    moved = mislabel(labelled_for_the_fitted_checkpoint(tmp_path / "labelled"), share=0.1)
    done = run_cli(
        "evaluate",
        str(tmp_path / "labelled"),
        "--report",
        str(reports_dir / "held-out"),
        "--gateway",
        web_cluster.gateway_address,
        "--api-key",
        API_KEY,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((reports_dir / "held-out" / "report.json").read_text())
    log_in(browser, web_cluster.web_url, API_KEY)
    wait_for(lambda: by_testid(browser, "upload-input"))
    browser.get(web_cluster.web_url + "/evaluations")
    wait_for(lambda: by_testid(browser, "report-row"), what="the reports list")
    browser.get(web_cluster.web_url + "/evaluations/held-out")
    accuracy = wait_for(lambda: by_testid(browser, "accuracy"), what="the report")[0].text
    low, high = report["accuracy_ci95"]
    assert accuracy.startswith(f"Accuracy {100 * report['accuracy']:.1f}%")
    assert f"{100 * low:.1f}–{100 * high:.1f}%" in accuracy
    width = browser.execute_script("return document.querySelector('img.matrix').naturalWidth")
    assert width > 500  # the confusion matrix PNG `podium evaluate` drew
    shown = {row.text for row in browser.find_elements("css selector", ".card .path")}
    assert shown == {item["path"] for item in report["misclassified"]}
    assert {path for path, _, _ in moved} <= shown  # the images moved to a wrong folder are among them
    shot(browser, "evaluation")
    assert console_errors(browser) == []
