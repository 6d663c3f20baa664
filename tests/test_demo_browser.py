"""The chat demo in headless Chromium pages: a message typed in one appears in the other; the
assistant's reply streams in word by word, and Stop stops it on the server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.browser import browser
from tests.support.demo_page import REPLY, ask, join, sign_in, stop_mid_reply
from tests.support.modules import load_demo
from tests.support.server import serve


@pytest.fixture
def demo() -> ModuleType:
    return load_demo()


@pytest.fixture
def demo_url(demo: ModuleType) -> Iterator[str]:
    with serve(demo.app) as address:
        yield f"http://{address}/"


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
        page.fill("#text", "too early")
        page.click("#send")
        page.wait_for_selector("#error:text('sign in first')")
        sign_in(page, demo_url, "ann")
        page.fill("#text", "too early")
        page.click("#send")
        page.wait_for_selector("#error:text('join a room before sending')")
        page.fill("#room", "bad room!")
        page.click("#join")
        page.wait_for_selector("#error:text('room: String should match pattern')")


def test_only_a_moderator_may_kick(demo: ModuleType, demo_url: str) -> None:
    with browser() as chromium:
        mod, ann, bob = chromium.new_page(), chromium.new_page(), chromium.new_page()
        join(ann, demo_url, "ann")
        join(bob, demo_url, "bob")
        ann.fill("#kick-nick", "bob")
        ann.click("#kick")
        ann.wait_for_selector("#error:text('only a moderator may do this')")
        join(mod, demo_url, "mod", moderator_code=demo.MODERATOR_CODE)
        mod.wait_for_selector("#messages li:text('signed in as mod (moderator)')")
        mod.fill("#kick-nick", "bob")
        mod.click("#kick")
        mod.wait_for_selector("#messages li:text('you kicked bob from lobby')")
        ann.wait_for_selector("#messages li:text('bob left lobby')")


# Every text the reply showed, in order: each word replaces the reply's text node.
RECORD_REPLY_TEXTS = """() => {
  window.replyTexts = [];
  new MutationObserver((records) => {
    for (const record of records) {
      if (!record.target.classList?.contains("reply")) continue;
      for (const node of record.addedNodes) window.replyTexts.push(node.data);
    }
  }).observe(document.getElementById("messages"), { childList: true, subtree: true });
}"""


def test_the_reply_streams_word_by_word_in_order(
    demo: ModuleType, demo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "WORD_DELAY", 0.01)
    words = demo.reply_words("how are you?")
    with browser() as chromium:
        page = chromium.new_page()
        sign_in(page, demo_url, "ann")
        page.evaluate(RECORD_REPLY_TEXTS)
        ask(page, "how are you?")
        page.wait_for_selector(f"#messages li:text('the assistant finished ({len(words)} words)')")
        page.wait_for_selector("#ask:enabled")
        texts = page.evaluate("window.replyTexts")
        assert page.text_content(REPLY) == " ".join(words)
        assert page.input_value("#prompt") == ""
        assert page.is_disabled("#stop")
    assert texts == [" ".join(words[:n]) for n in range(1, len(words) + 1)]


def test_stop_stops_the_reply_on_the_server(
    demo: ModuleType, demo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "WORD_DELAY", 0.2)
    with browser() as chromium:
        page = chromium.new_page()
        join(page, demo_url, "ann")
        stop_mid_reply(page, "stop me", demo.reply_words("stop me"), 0.2)
        # The connection goes on: the next reply streams to its end.
        monkeypatch.setattr(demo, "WORD_DELAY", 0.0)
        ask(page, "again")
        page.wait_for_selector("#messages li:text('the assistant finished')")
        page.wait_for_selector("#ask:enabled")
        assert page.text_content(REPLY) == " ".join(demo.reply_words("again"))


def test_an_empty_prompt_is_refused_in_the_page(demo_url: str) -> None:
    with browser() as chromium:
        page = chromium.new_page()
        sign_in(page, demo_url, "ann")
        ask(page, "")
        page.wait_for_selector("#error:text('prompt: String should have at least 1 character')")
        assert page.locator("#messages li.reply").count() == 0
        assert page.is_enabled("#ask")
