#!/usr/bin/env python3
"""Headless-Chromium check of the admin dashboard.

Opens BASE_URL/admin/dashboard?token=TOKEN, waits until the page has rendered live figures
(both API calls answered, five queue rows, a numeric latency), checks the token was removed
from the address bar and no script error happened, and saves a full-page screenshot.

    pip install selenium            # 4.x; uses the system chromedriver, downloads nothing
    apt-get install -y chromium chromium-driver
    BASE_URL=http://127.0.0.1:3900 TOKEN=eyJ... python3 dashboard_check.py out.png

Options: --base-url, --token (else the env vars), --timeout SECONDS (default 60), --polls N
(completed polls to wait for, default 2),
--chromium PATH, --chromedriver PATH. Exit status 0 when every check passed; on failure the
screenshot is still written (for the post-mortem) and the status is 1.
"""

import argparse
import json
import os
import sys
import time
from urllib.parse import quote

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

QUEUES = ["file-processing", "ai-training", "search-indexing", "notifications", "reports"]
WINDOWS = ["5m", "15m", "60m", "24h"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("screenshot", help="where to save the PNG screenshot")
    p.add_argument("--base-url", default=os.environ.get("BASE_URL", "http://127.0.0.1:3000"))
    p.add_argument("--token", default=os.environ.get("TOKEN"))
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--polls", type=int, default=2,
                   help="completed polls to wait for (2: the history chart has a line)")
    p.add_argument("--redrive", metavar="QUEUE",
                   help="also click QUEUE's Redrive button, accept the confirmation and check the "
                        "result line (moves that DLQ's messages back: off by default)")
    p.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    p.add_argument("--chromedriver", default=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    a = p.parse_args()
    if not a.token:
        p.error("a token is required (--token or TOKEN)")
    return a


def make_driver(args):
    opts = webdriver.ChromeOptions()
    opts.binary_location = args.chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1400,1000", "--hide-scrollbars"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=args.chromedriver), options=opts)


def text(driver, testid):
    els = driver.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]')
    return els[0].text.strip() if els else None


def as_number(s):
    try:
        return float(s.replace("%", "").strip())
    except (AttributeError, ValueError):
        return None


def rendered(driver, polls):
    """The page's own readiness flags plus the figures the check needs; None until ready."""
    body = driver.find_element(By.TAG_NAME, "body")
    if body.get_attribute("data-perf-loaded") != "1" or body.get_attribute("data-queues-loaded") != "1":
        return None
    if int(body.get_attribute("data-polls") or 0) < polls:
        return None
    rows = driver.find_elements(By.CSS_SELECTOR, '#queues-body tr[data-testid^="queue-row-"]')
    if len(rows) != len(QUEUES):
        return None
    latencies = {f"p{p}-{w}": as_number(text(driver, f"latency-p{p}-{w}"))
                 for w in WINDOWS for p in (50, 95, 99)}
    if not any(v is not None for v in latencies.values()):
        return None  # no traffic in any window yet: keep polling
    return rows, latencies


def check_redrive(driver, queue, timeout, failures, summary):
    buttons = driver.find_elements(By.CSS_SELECTOR, f'[data-testid="redrive-{queue}"]')
    if not buttons:
        failures.append(f"no redrive button for {queue}")
        return
    if not buttons[0].is_enabled():
        failures.append(f"the redrive button of {queue} is disabled (empty DLQ?)")
        return
    buttons[0].click()
    driver.switch_to.alert.accept()
    deadline = time.monotonic() + timeout
    line = ""
    while time.monotonic() < deadline:
        line = text(driver, "redrive-result") or ""
        if line.startswith(f"Redrive of {queue}:") or "failed:" in line:
            break
        time.sleep(0.3)
    summary["redrive"] = line
    if not line.startswith(f"Redrive of {queue}:") or " 0 moved" in line:
        failures.append(f"redrive of {queue} did not move anything: {line!r}")


def full_page_screenshot(driver, path):
    height = driver.execute_script(
        "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
    driver.set_window_size(1400, min(max(int(height) + 40, 800), 8000))
    time.sleep(0.3)  # let the resize re-layout before capturing
    driver.save_screenshot(path)


def main():
    args = parse_args()
    failures = []
    summary = {}
    driver = make_driver(args)
    try:
        url = f"{args.base_url.rstrip('/')}/admin/dashboard?token={quote(args.token, safe='')}"
        driver.set_page_load_timeout(args.timeout)
        result = None
        try:
            driver.get(url)
        except WebDriverException as e:
            failures.append(f"cannot open {args.base_url}/admin/dashboard: {e.msg}")
        deadline = time.monotonic() + (args.timeout if not failures else 0)
        while time.monotonic() < deadline:
            result = rendered(driver, args.polls)
            if result:
                break
            time.sleep(0.5)
        if not result and not failures:
            failures.append(
                f"no live figures within {args.timeout:.0f} s: status={text(driver, 'status')!r}, "
                f"state={driver.find_element(By.TAG_NAME, 'body').get_attribute('data-state')!r}")
        else:
            rows, latencies = result
            names = [r.get_attribute("data-queue") for r in rows]
            if names != QUEUES:
                failures.append(f"queue rows {names} != {QUEUES}")
            queues = {}
            for r in rows:
                cells = {c.get_attribute("data-field"): c.text.strip()
                         for c in r.find_elements(By.CSS_SELECTOR, "td[data-field]")}
                queues[r.get_attribute("data-queue")] = cells
                for field in ("visible", "in_flight", "delayed", "dlq_depth"):
                    if as_number(cells.get(field)) is None:
                        failures.append(f"queue {r.get_attribute('data-queue')}: {field}={cells.get(field)!r} is not a number")
                if not r.find_elements(By.CSS_SELECTOR, f'[data-testid="redrive-{r.get_attribute("data-queue")}"]'):
                    failures.append(f"queue {r.get_attribute('data-queue')}: no redrive button")
            numeric = {k: v for k, v in latencies.items() if v is not None}
            summary.update(latency_ms=numeric, queues=queues,
                           throughput_5m=text(driver, "throughput-5m"),
                           cache_hit_5m=text(driver, "cache-hit-5m"),
                           error_rate_5m=text(driver, "error-rate-5m"),
                           alert_count=text(driver, "alert-count"),
                           alerts=[e.text for e in driver.find_elements(By.CSS_SELECTOR, "#alerts li")],
                           status=text(driver, "status"))
            if "token=" in driver.current_url:
                failures.append("the token is still in the address bar")
            bars = driver.find_elements(By.CSS_SELECTOR, '[data-testid^="queue-bar-"]')
            if len(bars) != len(QUEUES):
                failures.append(f"{len(bars)} queue depth bars, expected {len(QUEUES)}")
            if not driver.find_elements(By.CSS_SELECTOR, '[data-testid^="latency-bar-"]'):
                failures.append("the latency chart has no bars")
        if result and args.redrive:
            check_redrive(driver, args.redrive, args.timeout, failures, summary)
        try:
            logs = driver.get_log("browser")
        except WebDriverException:
            logs = []
        errors = [l["message"] for l in logs if l.get("level") == "SEVERE"]
        if errors:
            failures.append(f"browser console errors: {errors}")
        full_page_screenshot(driver, args.screenshot)
        summary["screenshot"] = os.path.abspath(args.screenshot)
    finally:
        driver.quit()
    summary["failures"] = failures
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
