"""Driving the chat demo's page (examples/demochat.html) in Chromium, whatever serves it."""

from __future__ import annotations

import re
import time
from typing import Any

REPLY = "#messages li.reply >> nth=-1"  # the assistant's latest reply
STOPPED = re.compile(r"the assistant stopped after (\d+) of (\d+) words")


def sign_in(page: Any, url: str, nick: str, moderator_code: str = "") -> None:
    """Open the page and sign in: the page connects with the token the demo signs."""
    page.goto(url)
    page.fill("#nick", nick)
    page.fill("#moderator-code", moderator_code)
    page.click("#sign-in")
    page.wait_for_selector("#status:text('connected')")


def join(page: Any, url: str, nick: str, room: str = "lobby", moderator_code: str = "") -> None:
    sign_in(page, url, nick, moderator_code)
    page.fill("#room", room)
    page.click("#join")
    page.wait_for_selector(f"#messages li:text('you joined {room}')")


def ask(page: Any, prompt: str) -> None:
    page.fill("#prompt", prompt)
    page.click("#ask")


def wait_for_words(page: Any, count: int) -> None:
    """Until the latest reply shows at least ``count`` words."""
    page.wait_for_function(
        """count => {
          const reply = [...document.querySelectorAll("#messages li.reply")].pop();
          return reply !== undefined && reply.textContent.split(" ").length >= count;
        }""",
        arg=count,
    )


def stop_mid_reply(page: Any, prompt: str, expected: list[str], word_delay: float) -> None:
    """Ask (``expected``: the words of the full reply), press Stop after a few: the page marks
    the reply stopped, the server's generator says it stopped early, and no word comes after."""
    ask(page, prompt)
    wait_for_words(page, 3)
    page.click("#stop")
    page.wait_for_selector("#messages li.reply.stopped")
    notice = page.wait_for_selector("#messages li.notice:text('the assistant stopped after')")
    match = STOPPED.fullmatch(notice.text_content())
    assert match is not None, notice.text_content()
    produced, total = int(match[1]), int(match[2])
    shown = page.text_content(REPLY).split()
    assert total == len(expected)
    assert 3 <= len(shown) <= produced < total  # the server stopped, early
    assert shown == expected[: len(shown)]
    time.sleep(3 * word_delay)
    assert page.text_content(REPLY).split() == shown  # no word after the stop
    assert page.is_enabled("#ask")
    assert page.is_disabled("#stop")
