"""Headless Debian Chromium for the console's browser tests, through Playwright's Python package
(launched on /usr/bin/chromium: no browser is downloaded). Under ``CI=true`` the tests must run;
elsewhere they are skipped, with the reason, when Chromium or Playwright is missing."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"no browser: {CHROMIUM} is not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (install with the README's test command)"
    return None


def require_browser() -> None:
    reason = missing_browser()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: the browser tests must run, but {reason}")
    pytest.skip(reason)


def launch(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)


def sign_in(page, base_url: str, token: str) -> None:
    page.goto(f"{base_url}/console/login")
    page.fill('input[name="token"]', token)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/console/$"))
