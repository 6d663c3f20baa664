"""asyncapi.json: the registry as an AsyncAPI 3.0.0 document, for documentation portals,
AsyncAPI Studio and AsyncAPI's own generators.

The document describes the server (the API) as AsyncAPI does: it *receives* each action's
request and replies on the same channel (``correlationId`` at ``$message.payload#/id``: a
result, a stream's chunks then its result, or the error envelope), and it *sends* each event.
One channel, the WebSocket itself, with the ``ws`` binding's connect query parameters.

AsyncAPI's default schema format is a superset of JSON Schema draft-07, so the 2020-12 models of
schema.json are rewritten on the way in: ``$defs`` references point into
``components.schemas`` and tuples (``prefixItems``) use draft-07's array form of ``items``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from ..protocol import CANCEL, KEEPALIVE, PROTOCOL_VERSION
from .schema import has_input

__all__ = ["ASYNCAPI_VERSION", "build_asyncapi", "server_object"]

ASYNCAPI_VERSION = "3.0.0"
CHANNEL = "socket"
_KEY = re.compile(r"[^\w.\-]")  # AsyncAPI component keys: ^[\w\d\.\-_]+$


def _key(name: str) -> str:
    return _KEY.sub("_", name)


def _ref(section: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/{section}/{name}"}


def draft07(schema: Any) -> Any:
    """A 2020-12 schema in AsyncAPI's draft-07 dialect (see the module docstring)."""
    if isinstance(schema, list):
        return [draft07(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
            out[key] = "#/components/schemas/" + _key(value.removeprefix("#/$defs/"))
        elif key in ("properties", "patternProperties", "$defs", "dependentSchemas"):
            out[key] = {name: draft07(sub) for name, sub in value.items()}
        elif key in ("default", "const", "enum", "examples"):
            out[key] = value  # values, not schemas
        else:
            out[key] = draft07(value)
    if "prefixItems" in out:
        out["items"], rest = out.pop("prefixItems"), out.get("items", False)
        if rest is not False:
            out["additionalItems"] = rest
    return out


def server_object(url: str, description: str | None = None) -> dict[str, Any]:
    """``wss://abc.execute-api.eu-west-1.amazonaws.com/prod`` as an AsyncAPI server."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError(f"server {url!r} is not a ws:// or wss:// URL")
    server: dict[str, Any] = {"host": parts.netloc, "protocol": parts.scheme}
    if parts.path not in ("", "/"):
        server["pathname"] = parts.path.rstrip("/")
    if description:
        server["description"] = description
    return server


def _message(name: str, title: str, payload: Any, summary: str) -> dict[str, Any]:
    return {
        "name": name,
        "title": title,
        "summary": summary,
        "contentType": "application/json",
        "payload": payload,
    }


def _frame(envelope: str, **fixed: Any) -> dict[str, Any]:
    """The envelope, with some of its properties pinned to this action or event."""
    return {
        "allOf": [
            _ref("components/schemas", envelope),
            {"type": "object", "properties": fixed},
        ]
    }


def build_asyncapi(
    catalogue: dict[str, Any],
    servers: Mapping[str, str] | None = None,
    query: Sequence[str] = (),
) -> dict[str, Any]:
    """The AsyncAPI document for a catalogue (``schema.build_schema``), its servers given as
    ``{name: url}`` and the query parameters its $connect reads (all strings)."""
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}

    def add(key: str, message: dict[str, Any]) -> dict[str, str]:
        if key in messages:
            raise ValueError(f"two messages would both be named {key!r} in asyncapi.json")
        messages[key] = message
        return _ref(f"channels/{CHANNEL}/messages", key)

    def operate(key: str, action: str, summary: str, messages: list[Any], **more: Any) -> None:
        if key in operations:
            raise ValueError(f"two operations would both be named {key!r} in asyncapi.json")
        channel = _ref("channels", CHANNEL)
        operations[key] = {
            "action": action,
            "channel": channel,
            "summary": summary,
            "messages": messages,
            **more,
        }

    error = add(
        "error",
        _message(
            "error",
            "Error",
            _ref("components/schemas", "ErrorFrame"),
            "An action failed, or a message could not be read. `code` is an ErrorCode or "
            "an app's own code; `id` and `action` echo the request's when it had them.",
        ),
    )
    for name, entry in catalogue["actions"].items():
        key = _key(name)
        data = draft07(entry["input"]) if has_input(entry) else {}
        request = {
            "type": "object",
            "required": ["action", "id"] if entry.get("stream") else ["action"],
            "properties": {
                "action": {"const": name},
                "id": {"type": "string", "description": "Chosen by the caller; echoed back."},
                "data": data,
            },
        }
        summary = entry.get("description") or f"Call {name}."
        requests = [add(f"{key}.request", _message(f"{name}", name, request, summary))]
        replies = []
        if entry.get("stream"):
            chunk = _frame("ChunkFrame", action={"const": name}, data=draft07(entry["chunk"]))
            replies.append(
                add(
                    f"{key}.chunk",
                    _message(
                        f"{name}.chunk", f"{name} chunk", chunk, "One value the stream yields."
                    ),
                )
            )
        result = _frame("ResultFrame", action={"const": name}, data=draft07(entry["output"]))
        what = "The stream has ended." if entry.get("stream") else "The action's output."
        replies.append(
            add(f"{key}.result", _message(f"{name}.result", f"{name} result", result, what))
        )
        more: dict[str, Any] = {
            "reply": {"channel": _ref("channels", CHANNEL), "messages": [*replies, error]}
        }
        if entry.get("route"):
            more["description"] = f"Also routed by API Gateway's route key {entry['route']!r}."
        operate(key, "receive", summary, requests, **more)
    for name, schema in catalogue["events"].items():
        key = _key(name)
        frame = _frame("EventFrame", event={"const": name}, data=draft07(schema))
        ref = add(f"{key}.event", _message(name, name, frame, f"The server pushes {name}."))
        operate(f"{key}.event", "send", f"The server pushes {name}.", [ref])
    cancel = {
        "type": "object",
        "required": ["action", "id"],
        "properties": {"action": {"const": CANCEL}, "id": {"type": "string"}},
    }
    cancelled = add("cancel", _message(CANCEL, "Cancel a stream", cancel, "Stop a stream by id."))
    what = "Stop the running stream with this id; it ends with error code cancelled."
    operate("cancel", "receive", what, [cancelled])
    keepalive = {
        "type": "object",
        "required": ["action"],
        "properties": {"action": {"const": KEEPALIVE}},
    }
    kept = add("keepalive", _message(KEEPALIVE, "Keep-alive", keepalive, "Read, never answered."))
    what = "Keeps the connection under API Gateway's 10-minute idle timeout."
    operate("keepalive", "receive", what, [kept])

    channel: dict[str, Any] = {
        "address": "/",
        "title": "The WebSocket",
        "description": (
            f"One WebSocket carries every message (mangum-ws wire protocol {PROTOCOL_VERSION}): "
            "JSON text frames, one message each; API Gateway closes the socket on a frame over "
            "32 KB or a message over 128 KB."
        ),
        "messages": messages,
        "bindings": {"ws": {"method": "GET", "bindingVersion": "0.1.0"}},
    }
    if query:
        channel["bindings"]["ws"]["query"] = {
            "type": "object",
            "properties": {name: {"type": "string"} for name in sorted(query)},
        }
    document: dict[str, Any] = {
        "asyncapi": ASYNCAPI_VERSION,
        "id": f"urn:mangum-ws:{catalogue['title']}",
        "info": {
            "title": catalogue["title"],
            "version": f"{PROTOCOL_VERSION}",
            "description": "Generated by mangum-ws from the app's registry.",
        },
        "defaultContentType": "application/json",
    }
    if servers:
        document["servers"] = {
            _key(name): server_object(url) for name, url in sorted(servers.items())
        }
    document["channels"] = {CHANNEL: channel}
    document["operations"] = operations
    document["components"] = {
        "schemas": {_key(name): draft07(schema) for name, schema in catalogue["$defs"].items()},
        "correlationIds": {
            "id": {
                "description": "The request's id, echoed in every reply.",
                "location": "$message.payload#/id",
            }
        },
    }
    for key, message in messages.items():
        if not key.endswith(".event") and key != "keepalive":  # pushes and keep-alives have no id
            message["correlationId"] = _ref("components/correlationIds", "id")
    return document
