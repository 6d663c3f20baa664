"""schema.json: JSON Schema 2020-12 for every model, action, event and protocol envelope."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode
from pydantic_core import core_schema

from ..protocol import PROTOCOL_VERSION, ErrorCode

if TYPE_CHECKING:
    from ..app import MangumWS

DIALECT = "https://json-schema.org/draft/2020-12/schema"
REF_TEMPLATE = "#/$defs/{model}"


class WireSchema(GenerateJsonSchema):
    """Pydantic's generator, with one change: what the server sends (serialization mode) always
    carries fields that have defaults, so there they are required, not optional."""

    def field_is_required(
        self,
        field: core_schema.ModelField | core_schema.DataclassField | core_schema.TypedDictField,
        total: bool,
    ) -> bool:
        if self.mode == "serialization":
            return field.get("serialization_exclude_if") is None and not field.get(
                "serialization_exclude"
            )
        return super().field_is_required(field, total)


ENVELOPES: dict[str, Any] = {
    "Request": {
        "type": "object",
        "description": (
            "Client to server. A stream needs an id; {'action': '$cancel', 'id': ...} stops it."
        ),
        "required": ["action"],
        "properties": {
            "action": {"type": "string"},
            "id": {"type": "string"},
            "data": {},
        },
    },
    "ResultFrame": {
        "type": "object",
        "required": ["type", "id", "action", "data"],
        "properties": {
            "type": {"const": "result"},
            "id": {"type": ["string", "null"]},
            "action": {"type": "string"},
            "data": {},
        },
    },
    "ChunkFrame": {
        "type": "object",
        "description": "One value a stream yields; seq counts 0, 1, 2... within the stream.",
        "required": ["type", "id", "action", "seq", "data"],
        "properties": {
            "type": {"const": "chunk"},
            "id": {"type": "string"},
            "action": {"type": "string"},
            "seq": {"type": "integer", "minimum": 0},
            "data": {},
        },
    },
    "ErrorFrame": {
        "type": "object",
        "required": ["type", "id", "action", "error"],
        "properties": {
            "type": {"const": "error"},
            "id": {"type": ["string", "null"]},
            "action": {"type": ["string", "null"]},
            "error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "properties": {
                    "code": {
                        "type": "string",
                        "description": "An ErrorCode, or a code the app raises with ActionError.",
                    },
                    "message": {"type": "string"},
                    "details": {},
                },
            },
        },
    },
    "EventFrame": {
        "type": "object",
        "description": "A server push; one published to a topic carries the topic and its seq "
        "(1, 2, 3... per topic), which a resuming session replays from.",
        "required": ["type", "event", "data"],
        "properties": {
            "type": {"const": "event"},
            "event": {"type": "string"},
            "topic": {"type": "string"},
            "seq": {"type": "integer", "minimum": 1},
            "data": {},
        },
    },
    "ErrorCode": {"type": "string", "enum": [code.value for code in ErrorCode]},
}


def build_schema(ws: MangumWS, title: str) -> dict[str, Any]:
    inputs: list[tuple[tuple[str, str, str], JsonSchemaMode, TypeAdapter[Any]]] = []
    for name, spec in sorted(ws.registry.actions.items()):
        if spec.input_adapter is not None:
            inputs.append((("action", name, "input"), "validation", spec.input_adapter))
        if spec.output_adapter is not None:
            what = "chunk" if spec.stream else "output"
            inputs.append((("action", name, what), "serialization", spec.output_adapter))
    for name, event in sorted(ws.registry.events.items()):
        inputs.append((("event", name, "data"), "serialization", event.adapter))
    by_key, top = TypeAdapter.json_schemas(
        inputs, by_alias=True, ref_template=REF_TEMPLATE, schema_generator=WireSchema
    )
    found = {key: schema for (key, _mode), schema in by_key.items()}
    defs = dict(top.get("$defs", {}))
    clash = set(defs) & set(ENVELOPES)
    if clash:
        raise ValueError(f"model names {sorted(clash)} clash with the protocol's envelope names")

    actions: dict[str, Any] = {}
    for name, spec in sorted(ws.registry.actions.items()):
        entry: dict[str, Any] = {
            "input": found.get(("action", name, "input"), {"type": "null"}),
            "output": found.get(("action", name, "output"), {"type": "null"}),
        }
        if spec.stream:
            # A stream's result is null; what it yields is described by its chunk.
            entry["stream"] = True
            entry["chunk"] = found.get(("action", name, "chunk"), {})
        if spec.route is not None:
            entry["route"] = spec.route
        if spec.description:
            entry["description"] = spec.description
        actions[name] = entry
    events = {name: found[("event", name, "data")] for name in sorted(ws.registry.events)}
    return {
        "$schema": DIALECT,
        "$id": f"urn:mangum-ws:{title}",
        "title": title,
        "description": (
            "Generated by mangum-ws from the app's registry. $defs holds every model; "
            "'actions' and 'events' give each one's schemas (annotations, referencing $defs)."
        ),
        "x-mangum-ws-protocol": PROTOCOL_VERSION,
        "actions": actions,
        "events": events,
        "$defs": {**dict(sorted(defs.items())), **ENVELOPES},
    }


def schema_hash(schema: Mapping[str, Any]) -> str:
    """What identifies a registry's wire contract: a SHA-256 of its schema, leaving out the
    title (the same registry generated under another name is the same contract)."""
    contract = {key: value for key, value in schema.items() if key not in {"$id", "title"}}
    canonical = json.dumps(contract, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]
