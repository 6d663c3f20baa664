"""Headless Debian Chromium for browser tests, driven by Playwright (no browser download).

A test fails on any error its pages log to the console or throw (a 404 for a favicon too).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str:
    """The system Chromium; in CI a missing one fails the test, locally it skips with a hint."""
    for candidate in (
        os.environ.get("CHROMIUM_PATH"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and os.path.exists(candidate):
            return candidate
    message = "Chromium is not installed: run `apt-get install -y chromium`"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


class Chromium:
    """The launched browser; every page it opens reports console errors to ``errors``."""

    def __init__(self, instance: Any) -> None:
        self.instance = instance
        self.errors: list[str] = []

    def new_page(self) -> Any:
        page = self.instance.new_page()

        def console(message: Any) -> None:
            if message.type == "error":
                where = message.location.get("url") or page.url
                self.errors.append(f"console error at {where}: {message.text}")

        page.on("console", console)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught in {page.url}: {error}"))
        return page


@contextmanager
def browser() -> Iterator[Chromium]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        chromium = Chromium(instance)
        try:
            yield chromium
            if chromium.errors:
                pytest.fail("the page logged errors:\n" + "\n".join(chromium.errors))
        finally:
            instance.close()
