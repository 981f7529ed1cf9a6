"""Browser fixtures: Debian's Chromium driven by Playwright (Python), one fresh profile per test.

On a failure, the page is photographed at a phone's and a desktop's window size into the
test's temporary directory (the path is printed with the failure).
"""
from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def chromium() -> str:
    found = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    if not found:
        pytest.fail("Chromium is not installed: `make test` installs it (apt-get install -y chromium)")
    return found


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def playwright_driver():
    from playwright.sync_api import expect, sync_playwright

    # A job goes through the broker and a worker on a machine others share: wait for it.
    expect.set_options(timeout=30_000)
    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def browser_page(playwright_driver, tmp_path, request):
    """A page in a fresh Chromium profile (Europe/Berlin, en-GB), that must log no CSP violation."""
    context = playwright_driver.chromium.launch_persistent_context(
        str(tmp_path / "profile"), executable_path=chromium(), headless=True, args=CHROMIUM_ARGS,
        viewport=DESKTOP, timezone_id="Europe/Berlin", locale="en-GB",
    )
    context.set_default_timeout(30_000)
    page = context.pages[0] if context.pages else context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    page.console_problems = problems
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        for name, size in (("phone", PHONE), ("desktop", DESKTOP)):
            try:
                page.set_viewport_size(size)
                page.screenshot(path=str(tmp_path / f"failure-{name}.png"), full_page=True)
            except Exception as exc:  # the page may be the thing that broke
                print(f"no {name} screenshot: {exc}")
        print(f"screenshots of the failure: {tmp_path}/failure-phone.png, failure-desktop.png")
    context.close()
    csp = [p for p in problems if "Content Security Policy" in p or "Refused to" in p]
    assert not csp, f"the page broke its CSP: {csp}"
