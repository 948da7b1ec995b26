"""The real page in headless Chromium (Playwright for Python with the system's Chromium).

Skipped, saying why, where Playwright or Chromium is missing (``.ci/run`` installs both: Debian's
``chromium`` package and the ``browser`` extra). With ``NERVENET_SCREENSHOTS=1`` the
screenshots of docs/playground.md are written to docs/images/.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nervenet import models
from tests.playground.helpers import running_server

sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need "
                               "Playwright for Python: pip install 'nervenet[browser]'")
CHROMIUM = os.environ.get("NERVENET_CHROMIUM") or shutil.which("chromium") or shutil.which(
    "chromium-browser")
if CHROMIUM is None:
    pytest.skip("the browser tests need Chromium (apt-get install chromium); none found",
                allow_module_level=True)

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


@pytest.fixture(scope="module")
def server():
    with running_server() as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    # bypass_csp: Playwright's waits evaluate code, which the page's policy forbids
    context = browser.new_context(viewport={"width": 1480, "height": 1000}, bypass_csp=True,
                                  accept_downloads=True, locale="en-US")
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    yield page
    context.close()
    assert not errors, errors


def _open(page, server, query: str = ""):
    page.goto(f"{server.url}&{query}")
    page.wait_for_function("window.playground.frame && window.playground.data")
    return server.sessions[page.evaluate("window.playground.session")]


def _heatmap(page) -> np.ndarray:
    """The red channel of every third pixel of every third row of the heatmap canvas."""
    pixels = page.evaluate("""() => {
        const data = document.getElementById('heatmap').getContext('2d')
            .getImageData(0, 0, 300, 300).data;
        const red = [];
        for (let row = 0; row < 300; row += 3)
            for (let col = 0; col < 300; col += 3) red.push(data[4 * (row * 300 + col)]);
        return red;
    }""")
    return np.array(pixels, dtype=np.uint8)


def _screenshot(page, name: str) -> None:
    if os.environ.get("NERVENET_SCREENSHOTS") == "1":
        page.screenshot(path=str(IMAGES / name), full_page=True)


def test_training_on_xor_export_and_reproduce(page, server, tmp_path):
    session = _open(page, server, "dataset=xor&samples=200")
    first_loss = float(page.inner_text("#loss-test"))
    before = _heatmap(page)
    page.click("#play")
    page.wait_for_function("Number(document.getElementById('epoch').textContent) > 20")
    page.wait_for_function(f"Number(document.getElementById('loss-test').textContent) < "
                           f"{first_loss} - 0.05")
    page.click("#pause")
    page.wait_for_function("!window.playground.frame.playing")
    time.sleep(0.2)  # the last frame drawn
    assert np.abs(_heatmap(page).astype(int) - before).sum() > 1000  # the colours moved
    _screenshot(page, "playground.png")

    with page.expect_download() as info:
        page.click("#export-model")
    info.value.save_as(tmp_path / "model.nervenet")
    model = models.load_model(tmp_path / "model.nervenet")
    np.testing.assert_allclose(model.predict(session.x_test, verbose=0),
                               session.model.predict(session.x_test, verbose=0), rtol=1e-6)
    with page.expect_download() as info:
        page.click("#export-code")
    assert info.value.suggested_filename == "playground_run.py"
    info.value.save_as(tmp_path / "run.py")
    result = subprocess.run([sys.executable, str(tmp_path / "run.py")], capture_output=True,
                            text=True, timeout=180, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    assert result.returncode == 0, result.stderr
    loss = float(re.search(r"test loss: ([\d.]+)", result.stdout).group(1))
    # the same network, data and initial weights; only the mini-batch order differs
    assert abs(loss - session.loss_test) < 0.05 + 0.1 * session.loss_test, (
        loss, session.loss_test, session.epoch)


def test_quick_changes_reach_the_server_and_the_url_in_order(page, server):
    """Two changes made before the first one's reply came back: the second is sent only once
    the first is done (here its request is held back), so the page and the URL never show a
    setup that has the later change without the earlier one."""
    session = _open(page, server, "dataset=circle")
    requests = []

    def hold_the_first(route):
        requests.append(route)
        if len(requests) > 1:
            route.continue_()
    page.route("**/setup", hold_the_first)
    page.evaluate("""() => {
        for (const [id, value] of [["learning-rate", "0.1"], ["dataset", "spiral"]]) {
            document.getElementById(id).value = value;
            document.getElementById(id).dispatchEvent(new Event("change"));
        }
    }""")
    page.wait_for_timeout(500)
    assert len(requests) == 1 and page.evaluate("window.playground.setup.dataset") == "circle"
    requests[0].continue_()
    page.wait_for_function("window.playground.setup.dataset === 'spiral'")
    assert len(requests) == 2 and page.evaluate("window.playground.setup.learning_rate") == 0.1
    assert "learning_rate=0.1&" in page.url and "dataset=spiral" in page.url
    assert session.setup["learning_rate"] == 0.1 and session.setup["dataset"] == "spiral"


def test_controls_change_the_network_and_the_url(page, server):
    session = _open(page, server, "dataset=circle")
    page.select_option("#activation", "relu")
    page.wait_for_function("window.playground.setup.activation === 'relu'")
    assert session.model.get_layer("hidden_1").get_config()["activation"] == "relu"
    page.click("#add-layer")
    page.wait_for_selector("#node-2-1")
    assert page.inner_text("#layer-count") == "3"
    assert [layer.units for layer in session.model.layers] == [4, 2, 2, 1]
    page.select_option("#learning-rate", "0.1")
    page.select_option("#dataset", "spiral")
    page.wait_for_function("window.playground.setup.dataset === 'spiral'")
    assert session.setup["learning_rate"] == 0.1 and session.setup["dataset"] == "spiral"
    url = page.url
    assert "activation=relu" in url and "hidden=4%2C2%2C2" in url and "dataset=spiral" in url
    # the URL holds the whole setup: opening it in another tab builds the same network
    other = page.context.new_page()
    other.goto(url)
    other.wait_for_function("window.playground.frame")
    twin = server.sessions[other.evaluate("window.playground.session")]
    assert twin is not session and twin.setup == session.setup
    other.close()  # its stream closes, so its session ends
    deadline = time.monotonic() + 10
    while twin.id in server.sessions and time.monotonic() < deadline:
        time.sleep(0.05)
    assert twin.id not in server.sessions and not twin.thread.is_alive()
    assert session.id in server.sessions


def test_weight_edit_by_clicking_a_link(page, server):
    session = _open(page, server, "dataset=xor")
    page.locator("#links path").first.dispatch_event("click")
    editor = page.locator("#weight-editor")
    editor.fill("1.5")
    editor.press("Enter")
    deadline = time.monotonic() + 10
    while session.model.layers[0].kernel.data[0, 0] != 1.5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert session.model.layers[0].kernel.data[0, 0] == 1.5


def test_korean_and_the_course_networks(page, server):
    _open(page, server, "lang=ko&mode=fixed&dataset=xor_gate&hidden=2&activation=step")
    assert page.inner_text("label[for=learning-rate]") == "학습률"
    assert page.inner_text("label[for=activation]") == "활성함수"
    assert "NAND" in page.inner_text("#header-note")
    assert page.is_disabled("#play")  # the fixed network does not learn
    _screenshot(page, "playground_xor_fixed_ko.png")
    page.select_option("#mode", "perceptron")
    page.wait_for_function("window.playground.setup.mode === 'perceptron'")
    assert "로젠블랫" in page.inner_text("#header-note")
    page.select_option("#lang", "en")
    assert page.inner_text("label[for=learning-rate]") == "Learning rate"


def test_optimizer_path_and_gradient_bars(page, server):
    session = _open(page, server, "dataset=circle&hidden=8,8,8,8,8,8&activation=sigmoid"
                                  "&optimizer=adam&learning_rate=0.01")
    assert page.locator("#gradient-bars .bar").count() == 7
    page.click("#step")
    page.click("#step")
    page.wait_for_function("window.playground.frame.epoch === 2")
    page.click("#surface-button")
    page.wait_for_function("window.playground.surface !== null")
    assert len(page.evaluate("window.playground.surface.path")) == 3
    assert session.setup["optimizer"] == "adam"
    _screenshot(page, "playground_deep_sigmoid.png")
