"""API Gateway's WebSocket limits, applied the same way on every path.

AWS's quota page: messages up to 128 KB, frames up to 32 KB; "if a larger message (or larger
frame size) is received, the connection is closed with code 1009". Binary frames are not
supported (close 1003). Idle connections close after 10 minutes, every connection after 2 hours.
"""

from __future__ import annotations

from typing import Final, NamedTuple

MAX_MESSAGE_BYTES: Final = 128 * 1024
MAX_FRAME_BYTES: Final = 32 * 1024
IDLE_TIMEOUT: Final = 10 * 60.0
MAX_CONNECTION_AGE: Final = 2 * 60 * 60.0

# JSON nested deeper than this is refused as bad_request: it is where the JSON parser
# (pydantic-core's jiter) stops, well before Python's recursion limit.
MAX_JSON_DEPTH: Final = 200
# A client's call id is echoed back in every reply; longer ones are refused as bad_request.
# Action names longer than this are never repeated whole in an error frame.
MAX_ID_CHARS: Final = 128
MAX_NAME_CHARS: Final = 128
# At most this much of a client's own text (an unknown action name, say) is repeated back.
MAX_ECHO_CHARS: Final = 64
# invalid_input errors carry at most this many of Pydantic's entries (the message says how
# many there were), and their frame stays under MAX_ERROR_BYTES.
MAX_ERROR_DETAILS: Final = 20
MAX_ERROR_BYTES: Final = 16 * 1024


class Closing(NamedTuple):
    """Close the socket with this WebSocket close code and reason."""

    code: int
    reason: str


MESSAGE_TOO_BIG: Final = Closing(1009, "Message too big")
FRAME_TOO_BIG: Final = Closing(1009, "Frame too big")
BINARY_FRAME: Final = Closing(1003, "Binary frames are not supported")
IDLE: Final = Closing(1001, "Going away")
TOO_OLD: Final = Closing(1001, "Going away")
DELETED: Final = Closing(1000, "Connection Closed Normally")


def inbound_closing(text: str | None) -> Closing | None:
    """The close an incoming WebSocket message earns on API Gateway, or None to deliver it.

    ``text`` is the text of the message, or None for a binary message.
    """
    if text is None:
        return BINARY_FRAME
    # A UTF-8 character is at most 4 bytes: most messages are sized without encoding them.
    if not fits(text):
        return MESSAGE_TOO_BIG
    return None


def fits(frame: str, limit: int = MAX_MESSAGE_BYTES) -> bool:
    """Whether ``frame`` is at most ``limit`` bytes once encoded as UTF-8."""
    return len(frame) * 4 <= limit or len(frame.encode(errors="surrogatepass")) <= limit
