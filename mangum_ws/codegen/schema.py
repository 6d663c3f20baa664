"""schema.json: JSON Schema 2020-12 for every model, action, event and protocol envelope.

``build_schema`` reads the registry into a catalogue (models, actions, events) that every
generator reads; ``schema_document`` is the catalogue as schema.json, a document that strict
validators compile: the actions and events are themselves schemas under ``$defs``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode
from pydantic_core import core_schema

from ..protocol import PROTOCOL_VERSION, ErrorCode
from .portable import DECIMAL_PATTERN, portable

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

    def encode_default(self, dft: Any) -> Any:
        """A default that is already plain JSON is its own encoding: Pydantic would build a
        TypeAdapter for its type, per field, only to hand the same value back."""
        if _plain_json(dft):
            return dft
        return super().encode_default(dft)

    def decimal_schema(self, schema: core_schema.DecimalSchema) -> Any:
        """Pydantic lets any string through ``anyOf[number, string]``; Decimal() does not."""
        json_schema: dict[str, Any] = super().decimal_schema(schema)
        strings = json_schema.get("anyOf", [json_schema])
        for branch in strings:
            if branch.get("type") == "string":
                branch.setdefault("pattern", DECIMAL_PATTERN)
        return json_schema


def _plain_json(value: Any) -> bool:
    """Whether Pydantic's JSON serialization returns ``value`` unchanged, whatever the config:
    exact str/int/bool/None, finite floats (infinities and NaN are left to Pydantic, whose
    ``ser_json_inf_nan`` is about them), and lists and str-keyed dicts of those (a tuple, an
    enum or another subclass serializes otherwise)."""
    kind = type(value)
    if kind in (str, int, bool, type(None)):
        return True
    if kind is float:
        return math.isfinite(value)
    if kind is list:
        return all(_plain_json(item) for item in value)
    if kind is dict:
        return all(type(key) is str and _plain_json(item) for key, item in value.items())
    return False


# What an action without an input model accepts: anything, which the server ignores.
NO_INPUT: dict[str, Any] = {"description": "This action takes no input: 'data' is ignored."}
CATALOGUE = ("mangum-ws:protocol", "mangum-ws:actions", "mangum-ws:events")

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
            "id": {"anyOf": [{"type": "string"}, {"type": "null"}]},
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
            "id": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "action": {"anyOf": [{"type": "string"}, {"type": "null"}]},
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
    found = {key: portable(schema) for (key, _mode), schema in by_key.items()}
    defs = {name: portable(schema) for name, schema in top.get("$defs", {}).items()}
    clash = set(defs) & (set(ENVELOPES) | set(CATALOGUE))
    if clash:
        raise ValueError(f"model names {sorted(clash)} clash with the protocol's envelope names")

    actions: dict[str, Any] = {}
    for name, spec in sorted(ws.registry.actions.items()):
        entry: dict[str, Any] = {
            "input": found.get(("action", name, "input"), NO_INPUT),
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
        "title": title,
        "actions": actions,
        "events": events,
        "$defs": {**dict(sorted(defs.items())), **ENVELOPES},
    }


def has_input(entry: dict[str, Any]) -> bool:
    return bool(entry["input"] != NO_INPUT)


def _described(schema: dict[str, Any], description: str | None) -> dict[str, Any]:
    return {**schema, "description": description} if description else schema


def schema_document(catalogue: dict[str, Any]) -> dict[str, Any]:
    """schema.json: the models and envelopes, and the actions and events as schemas of a
    catalogue object (``$defs/mangum-ws:actions/properties/<action>/properties/input``), so that
    strict validators, which refuse keywords they do not know, compile the whole document."""
    actions: dict[str, Any] = {}
    for name, entry in catalogue["actions"].items():
        properties = {
            key: ({"const": entry[key]} if key in ("route", "stream") else entry[key])
            for key in ("input", "output", "stream", "chunk", "route")
            if key in entry
        }
        actions[name] = _described(
            {"type": "object", "required": list(properties), "properties": properties},
            entry.get("description"),
        )
    return {
        "$schema": DIALECT,
        "$id": f"urn:mangum-ws:{catalogue['title']}",
        "title": catalogue["title"],
        "description": (
            f"Generated by mangum-ws (wire protocol {PROTOCOL_VERSION}) from the app's registry. "
            "$defs holds every model and envelope; $defs/mangum-ws:actions and "
            "$defs/mangum-ws:events give each action's input, output (and a stream's chunk) "
            "and each event's data, referencing them."
        ),
        "$defs": {
            **catalogue["$defs"],
            "mangum-ws:protocol": {
                "description": "The mangum-ws wire protocol version these schemas describe.",
                "const": PROTOCOL_VERSION,
            },
            "mangum-ws:actions": {
                "description": "Each action: its input, output, and for a stream its chunk.",
                "type": "object",
                "properties": actions,
            },
            "mangum-ws:events": {
                "description": "Each event (a server push): the schema of its data.",
                "type": "object",
                "properties": catalogue["events"],
            },
        },
    }


def schema_hash(schema: Mapping[str, Any]) -> str:
    """What identifies a registry's wire contract: a SHA-256 of its schema, leaving out the
    title (the same registry generated under another name is the same contract)."""
    contract = {key: value for key, value in schema.items() if key not in {"$id", "title"}}
    canonical = json.dumps(contract, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]
