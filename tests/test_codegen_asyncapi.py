"""asyncapi.json: AsyncAPI's own parser (@asyncapi/parser) validates it for the demo and the zoo
with zero errors, and it says what the wire protocol says."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from mangum_ws.codegen import generate
from tests import codegen_zoo
from tests.support.node import node_check
from tests.test_codegen_typescript import CLIENTS, require_node_tools

sys.path.insert(0, str(Path(__file__).parent.parent / "examples"))

SERVERS = {"prod": "wss://abc.execute-api.eu-west-1.amazonaws.com/prod"}
ZOO: dict[str, Any] = json.loads(
    generate(codegen_zoo.ws, "tests.codegen_zoo:ws", servers=SERVERS, query=["token"])[
        "asyncapi.json"
    ]
)
DEMO_FILE = CLIENTS / "demochat" / "asyncapi.json"


def parse(document: dict[str, Any]) -> dict[str, Any]:
    require_node_tools()
    if not (CLIENTS / "node_modules" / "@asyncapi" / "parser").exists():
        pytest.fail("@asyncapi/parser is missing: cd clients && npm install")
    report = node_check("asyncapi_check.mjs", document)
    return report


@pytest.mark.parametrize("which", ["zoo", "demo"])
def test_the_asyncapi_parser_finds_no_errors(which: str) -> None:
    document = ZOO if which == "zoo" else json.loads(DEMO_FILE.read_text())
    report = parse(document)
    assert report["errors"] == []
    assert report["warnings"] == []
    assert report["operations"] == len(document["operations"])


def test_the_parser_does_refuse_a_broken_document() -> None:
    # The check above can fail: an operation on a channel that does not exist is an error.
    broken = json.loads(json.dumps(ZOO))
    broken["operations"]["zoo.echo"]["channel"] = {"$ref": "#/channels/nowhere"}
    del broken["info"]["version"]
    assert len(parse(broken)["errors"]) >= 2


def test_each_action_is_request_reply_correlated_by_id() -> None:
    echo = ZOO["operations"]["zoo.echo"]
    assert echo["action"] == "receive"
    assert echo["messages"] == [{"$ref": "#/channels/socket/messages/zoo.echo.request"}]
    assert echo["reply"]["messages"] == [
        {"$ref": "#/channels/socket/messages/zoo.echo.result"},
        {"$ref": "#/channels/socket/messages/error"},
    ]
    messages = ZOO["channels"]["socket"]["messages"]
    assert ZOO["components"]["correlationIds"]["id"]["location"] == "$message.payload#/id"
    for key in ("zoo.echo.request", "zoo.echo.result", "error"):
        assert messages[key]["correlationId"] == {"$ref": "#/components/correlationIds/id"}
    request = messages["zoo.echo.request"]["payload"]
    assert request["properties"]["action"] == {"const": "zoo.echo"}
    assert request["properties"]["data"] == {"$ref": "#/components/schemas/EchoIn"}
    assert messages["error"]["payload"] == {"$ref": "#/components/schemas/ErrorFrame"}


def test_streams_reply_with_chunks_then_a_result() -> None:
    count = ZOO["operations"]["zoo.count"]
    assert [m["$ref"].rsplit("/", 1)[1] for m in count["reply"]["messages"]] == [
        "zoo.count.chunk",
        "zoo.count.result",
        "error",
    ]
    chunk = ZOO["channels"]["socket"]["messages"]["zoo.count.chunk"]["payload"]["allOf"]
    assert chunk[0] == {"$ref": "#/components/schemas/ChunkFrame"}  # type "chunk", id, seq
    assert chunk[1]["properties"]["data"] == {"$ref": "#/components/schemas/Token"}
    assert chunk[1]["properties"]["action"] == {"const": "zoo.count"}
    request = ZOO["channels"]["socket"]["messages"]["zoo.count.request"]["payload"]
    assert request["required"] == ["action", "id"]  # a stream needs an id


def test_events_are_send_operations_and_models_are_components() -> None:
    tick = ZOO["operations"]["tick.event"]
    assert tick["action"] == "send"
    payload = ZOO["channels"]["socket"]["messages"]["tick.event"]["payload"]["allOf"]
    assert payload[0] == {"$ref": "#/components/schemas/EventFrame"}
    assert payload[1]["properties"] == {
        "event": {"const": "tick"},
        "data": {"$ref": "#/components/schemas/Tick"},
    }
    assert "correlationId" not in ZOO["channels"]["socket"]["messages"]["tick.event"]
    schemas = ZOO["components"]["schemas"]
    assert {"Everything-Input", "Tick", "ErrorFrame", "ErrorCode"} <= set(schemas)
    # Tuples in AsyncAPI's draft-07 dialect; references into components.schemas.
    pair = schemas["Everything-Input"]["properties"]["pair"]
    assert pair["items"] == [{"type": "integer"}, {"type": "string"}]
    assert "prefixItems" not in json.dumps(ZOO)
    assert "#/$defs/" not in json.dumps(ZOO)


def test_servers_and_the_ws_binding_come_from_the_options() -> None:
    assert ZOO["asyncapi"] == "3.0.0"
    assert ZOO["servers"]["prod"]["host"] == "abc.execute-api.eu-west-1.amazonaws.com"
    binding = ZOO["channels"]["socket"]["bindings"]["ws"]
    assert binding["query"]["properties"] == {"token": {"type": "string"}}
    assert "servers" not in json.loads(DEMO_FILE.read_text())  # none given: none invented


def test_deterministic() -> None:
    again = generate(codegen_zoo.ws, "tests.codegen_zoo:ws", servers=SERVERS, query=["token"])
    assert json.loads(again["asyncapi.json"]) == ZOO
