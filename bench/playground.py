"""The playground's speed with a real browser: training steps per second while the page
redraws the 100 x 100 output heatmap, and the heatmap's frames per second.

The server runs as ``nervenet playground --no-browser`` in its own process; headless Chromium
(Playwright for Python, the system's Chromium) opens the page, presses play and counts. The
issue's targets (#19): a 2-8-8-1 network on 500 points (batch 10) at >= 100 steps/s with the
heatmap at >= 10 frames/s; a 6-layer network of 8 neurons at half that. A second table gives
the session's steps/s without any page (the training thread alone) for comparison.

Run: python bench/playground.py [--seconds 10] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

NETWORKS = {"2-8-8-1": "8,8", "2-8x6-1": "8,8,8,8,8,8"}
SETUP = "dataset=circle&samples=500&batch_size=10&train_fraction=0.5&learning_rate=0.03"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            return re.search(r"model name\s*:\s*(.*)", handle.read()).group(1)
    except (OSError, AttributeError):
        return platform.processor() or "unknown CPU"


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def start_server() -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-m", "nervenet", "playground", "--no-browser"],
                               stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    match = re.search(r"(http://\S+)", line)
    if not match:
        process.kill()
        raise RuntimeError(f"the server printed no URL: {line!r}")
    return process, match.group(1)


def measure_page(browser, url: str, hidden: str, seconds: float) -> dict:
    page = browser.new_page(viewport={"width": 1480, "height": 1000}, bypass_csp=True)
    page.goto(f"{url}&{SETUP}&hidden={hidden}")
    page.wait_for_function("window.playground.frame && window.playground.data")
    page.click("#play")
    page.wait_for_function("window.playground.frame.epoch > 0")
    read = "[window.playground.frame.steps, window.playground.framesDrawn, performance.now()]"
    steps0, drawn0, t0 = page.evaluate(read)
    time.sleep(seconds)
    steps1, drawn1, t1 = page.evaluate(read)
    page.click("#pause")
    page.close()
    elapsed = (t1 - t0) / 1000
    return {"steps/s": (steps1 - steps0) / elapsed, "frames/s": (drawn1 - drawn0) / elapsed}


def measure_session(hidden: str, seconds: float) -> float:
    """Steps/s of a session's thread with nobody watching (frames are still computed)."""
    from nervenet.playground import Session, validate

    setup = validate({"dataset": "circle", "samples": 500, "batch_size": 10,
                      "hidden": [int(n) for n in hidden.split(",")]})
    session = Session(setup)
    session.submit("action", "play")
    time.sleep(1.0)
    steps0, t0 = session.steps, time.perf_counter()
    time.sleep(seconds)
    steps1, t1 = session.steps, time.perf_counter()
    session.close()
    return (steps1 - steps0) / (t1 - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--chromium", default=os.environ.get("NERVENET_CHROMIUM")
                        or shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; load average before: "
          f"{load_average()}")
    server, url = start_server()
    rows = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium)
            for name, hidden in NETWORKS.items():
                page = measure_page(browser, url, hidden, args.seconds)
                rows.append((name, page["steps/s"], page["frames/s"],
                             measure_session(hidden, args.seconds)))
            browser.close()
    finally:
        server.terminate()
        server.wait(10)
    print("\n| network (500 points, batch 10) | steps/s with the page | heatmap frames/s | "
          "steps/s, session alone |")
    print("|---|---|---|---|")
    for name, steps, frames, alone in rows:
        print(f"| {name} | {steps:.0f} | {frames:.1f} | {alone:.0f} |")
    print(f"\nload average after: {load_average()}")


if __name__ == "__main__":
    main()
