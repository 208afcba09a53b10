"""Browser fixtures: Debian's Chromium driven by Playwright (never downloaded at run time)."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

CHROMIUM = Path(os.environ.get("HUB_TEST_CHROMIUM", "/usr/bin/chromium"))
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # The offer ring is WebAudio; let it start without a click so the page behaves as it
    # does for an agent who has interacted with it.
    "--autoplay-policy=no-user-gesture-required",
]

PageFactory = Callable[[], Awaitable[Page]]


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """Debian's Chromium; missing fails the run on CI and skips elsewhere."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (run `make chromium`)"
        if CI:
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture
async def browser(chromium_path: Path) -> AsyncIterator[Browser]:
    """A headless Chromium for one test."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def new_page(browser: Browser) -> AsyncIterator[PageFactory]:
    """``await new_page()``: a page in its own context (own cookies), 1440x900.

    Script errors on any page fail the test at teardown.
    """
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    async def factory() -> Page:
        context = await browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-US")
        contexts.append(context)
        page = await context.new_page()
        page.set_default_timeout(8000)
        page.on("pageerror", lambda err: errors.append(f"{page.url}: {err}"))
        return page

    yield factory
    for context in contexts:
        await context.close()
    assert not errors, f"script errors in the console: {errors}"


ContextPageFactory = Callable[..., Awaitable[Page]]


@pytest.fixture
async def new_page_with(browser: Browser) -> AsyncIterator[ContextPageFactory]:
    """``await new_page_with(**context_options)``: ``new_page`` with options of its context.

    ``bypass_csp=True`` takes the page's Content-Security-Policy away, so a test sees what
    the page's own rendering does (the CSP being the second wall, not the first). Script
    errors on any page fail the test at teardown.
    """
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    async def factory(**options: Any) -> Page:
        context = await browser.new_context(
            viewport={"width": 1440, "height": 900}, locale="en-US", **options
        )
        contexts.append(context)
        page = await context.new_page()
        page.set_default_timeout(8000)
        page.on("pageerror", lambda err: errors.append(f"{page.url}: {err}"))
        return page

    yield factory
    for context in contexts:
        await context.close()
    assert not errors, f"script errors in the console: {errors}"


async def sign_in(page: Page, base: str, username: str, password: str, *, landing: str) -> None:
    """Log in through the login page and wait for the page a role lands on
    (``console``, ``supervisor``)."""
    await page.goto(f"{base}/login")
    await page.get_by_test_id("login-username").fill(username)
    await page.get_by_test_id("login-password").fill(password)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(re.compile(rf"/{landing}$"))
