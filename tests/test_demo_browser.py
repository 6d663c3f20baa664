"""The chat demo in two headless Chromium pages: a message typed in one appears in the other."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser import browser
from tests.support.modules import load_demo
from tests.support.server import serve


@pytest.fixture
def demo_url() -> Iterator[str]:
    demo = load_demo()
    with serve(demo.app) as address:
        yield f"http://{address}/"


def join(page: Any, url: str, nick: str, room: str = "lobby") -> None:
    page.goto(url)
    page.wait_for_selector("#status:text('connected')")
    page.fill("#nick", nick)
    page.fill("#room", room)
    page.click("#join")
    page.wait_for_selector(f"#messages li:text('you joined {room}')")


def test_two_pages_chat(demo_url: str) -> None:
    with browser() as chromium:
        alice, bob = chromium.new_page(), chromium.new_page()
        join(alice, demo_url, "alice")
        join(bob, demo_url, "bob")
        alice.wait_for_selector("#messages li:text('bob joined lobby')")

        alice.fill("#text", "hello from alice")
        alice.click("#send")
        bob.wait_for_selector("#messages li:text('alice: hello from alice')", timeout=5000)
        alice.wait_for_selector("#messages li:text('alice: hello from alice')", timeout=5000)

        bob.fill("#text", "hi alice")
        bob.press("#text", "Enter")
        alice.wait_for_selector("#messages li:text('bob: hi alice')", timeout=5000)

        if os.environ.get("DEMO_SCREENSHOT"):
            alice.screenshot(path=os.environ["DEMO_SCREENSHOT"])
        bob.close()
        alice.wait_for_selector("#messages li:text('bob left lobby')", timeout=5000)


def test_validation_errors_are_shown_in_the_page(demo_url: str) -> None:
    with browser() as chromium:
        page = chromium.new_page()
        page.goto(demo_url)
        page.wait_for_selector("#status:text('connected')")
        page.fill("#text", "too early")
        page.click("#send")
        page.wait_for_selector("#error:text('join a room before sending')")
        page.fill("#nick", "bad/nick!")
        page.fill("#room", "lobby")
        page.click("#join")
        page.wait_for_selector("#error:text('nick: String should match pattern')")
