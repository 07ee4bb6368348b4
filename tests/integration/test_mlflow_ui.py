"""The MLflow UI as a researcher looks at an ablation, in a real browser: ``mlflow ui`` on the
tiny ablation's store, Chromium through Selenium, screenshots of the training runs table, the
compare view and the promoted model's version page, each checked for the text it must render.

Skipped where Chromium or its driver is missing (Debian: ``apt-get install chromium
chromium-driver``). Set ``INSTANCEHMR_SCREENSHOTS=DIR`` to keep the screenshots for a look.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from servers import free_port, wait_until_up

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="the browser check needs Chromium and ChromeDriver (Debian: chromium chromium-driver)",
)


@pytest.fixture(scope="module")
def promoted(ablation):
    """The ablation's best trial promoted the way the README does it."""
    root = ablation[0]
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")}
    argv = [sys.executable, "-m", "instancehmr.cli", "promote", "ablate-quickstart"]
    done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def ui(ablation, promoted):
    """Base URL of ``mlflow ui`` serving the ablation's store."""
    root = ablation[0]
    port = free_port()
    argv = [
        sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    with open(root / "mlflow-ui.log", "w") as log:
        server = subprocess.Popen(argv, cwd=root, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        wait_until_up(f"{base}/health", server, (root / "mlflow-ui.log").read_text)
        yield base
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1000"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    keep = os.environ.get("INSTANCEHMR_SCREENSHOTS")
    folder = Path(keep) if keep else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def show(browser, url: str | None, texts: list[str], shot: Path, timeout: float = 60.0) -> str:
    """Open ``url`` (None: stay on the page), wait until every one of ``texts`` is rendered,
    save a screenshot to ``shot`` and return the page's visible text; fails naming the texts
    that never appeared."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    if url is not None:
        browser.get(url)

    def missing(driver) -> list[str]:
        body = driver.find_element(By.TAG_NAME, "body").text
        return [t for t in texts if t not in body]

    try:
        WebDriverWait(browser, timeout).until(lambda d: not missing(d))
    except TimeoutException:
        browser.save_screenshot(str(shot))
        pytest.fail(
            f"{url or browser.current_url} never showed {missing(browser)} (screenshot {shot})"
        )
    time.sleep(1.0)  # charts and images finish drawing after the text
    browser.save_screenshot(str(shot))
    return browser.find_element(By.TAG_NAME, "body").text


def test_the_runs_table_names_each_trial_by_row_and_seed(store, ui, browser, shots):
    """The sweep's parent row expanded, as a user clicks it open: the trials by row and seed,
    each with its datasets and its logged model."""
    from selenium.webdriver.common.by import By

    _, experiment_id, _ = store
    url = f"{ui}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
    show(browser, url, ["ablate-quickstart", "Dataset"], shots / "runs_table.png")
    for close in browser.find_elements(By.CSS_SELECTOR, "button[aria-label='Close']"):
        close.click()  # the assistant's side panel
    expanders = browser.find_elements(
        By.CSS_SELECTOR, "button[data-component-id*='runnamecellrenderer']"
    )
    assert expanders, "no expander on the sweep's parent row"
    expanders[0].click()
    text = show(browser, url=None, texts=["default s0", "default s1", "dim32 s0", "dim32 s1"],
                shot=shots / "runs_table.png")  # fmt: skip
    assert text.count("synthetic/train") == 4


def test_compare_opens_on_the_validation_metric(store, ui, browser, shots):
    """Compare's parallel-coordinates plot opens on the differing params and the judging
    metric, and its metric table leads with the best checkpoint's validation."""
    _, experiment_id, runs = store
    trials = [r.info.run_id for r in runs if "instancehmr.trial_id" in r.data.tags]
    url = (
        f"{ui}/#/compare-runs?runs={quote(json.dumps(trials))}"
        f"&experiments={quote(json.dumps([experiment_id]))}"
    )
    text = show(browser, url, ["default s0", "dim32 s1", "Metrics:"], shots / "compare.png")
    lines = text.splitlines()
    assert lines[lines.index("Parameters:") + 1 : lines.index("Metrics:")] == [
        "ablation", "model.embedding_dim", "train.seed"
    ]  # fmt: skip
    assert lines[lines.index("Metrics:") + 1] == "val/mpjpe"
    table = lines[lines.index("Metrics", lines.index("Run details")) :]
    assert [line for line in table if "/" in line][:2] == ["best/val/center_ap", "best/val/mpjpe"]


def test_the_promoted_version_says_where_it_came_from(ui, browser, shots, promoted):
    url = f"{ui}/#/models/instancehmr/versions/1"
    text = show(browser, url, ["Version 1", "champion", "Description"], shots / "model_version.png")
    assert "Trial of sweep ablate-quickstart, row " in text and ", seed " in text
