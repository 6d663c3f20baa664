"""schema.json under a validator nobody here wrote: ajv 8 in strict mode (JSON Schema 2020-12,
ajv-formats, no added keywords) compiles it, and agrees with Pydantic on what is valid."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from mangum_ws.codegen import generate
from tests import codegen_zoo
from tests.codegen_zoo import CORPUS
from tests.support.node import node_check
from tests.test_codegen_typescript import CLIENTS, require_node_tools

ZOO: dict[str, Any] = json.loads(generate(codegen_zoo.ws, "tests.codegen_zoo:ws")["schema.json"])
# The checked-in file, which test_codegen_cli keeps fresh.
DEMO: dict[str, Any] = json.loads((CLIENTS / "demochat" / "schema.json").read_text())


def ajv(schema: dict[str, Any], cases: list[tuple[str, Any]]) -> list[bool]:
    require_node_tools()
    if not (CLIENTS / "node_modules" / "ajv").exists():
        pytest.fail("ajv is missing: cd clients && npm install")
    payload = {"schema": schema, "cases": [{"ref": r, "payload": p} for r, p in cases]}
    out = node_check("ajv_check.mjs", payload)
    assert out["compiled"], out["error"]
    results: list[bool] = out["results"]
    return results


def input_ref(action: str) -> str:
    return f"#/$defs/mangum-ws:actions/properties/{action}/properties/input"


def pydantic_accepts(model: type[BaseModel], payload: Any) -> bool:
    try:
        model.model_validate(payload)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("schema", [ZOO, DEMO], ids=["zoo", "demo"])
def test_ajv_strict_compiles_the_schema(schema: dict[str, Any]) -> None:
    assert ajv(schema, []) == []


EVERYTHING = CORPUS[codegen_zoo.Everything][0]
UUID = "12345678-1234-5678-1234-567812345678"
# Payloads Pydantic refuses, one reason each: ajv must refuse them too.
INVALID: list[tuple[str, type[BaseModel], Any]] = [
    ("zoo.everything", codegen_zoo.Everything, {**EVERYTHING, "pet": {}}),  # no tag
    ("zoo.everything", codegen_zoo.Everything, {**EVERYTHING, "pet": {"good": True}}),
    ("zoo.everything", codegen_zoo.Everything, {**EVERYTHING, "pet": {"kind": "cow"}}),
    ("zoo.everything", codegen_zoo.Everything, {**EVERYTHING, "pet": {"kind": "dog"}}),
    ("zoo.everything", codegen_zoo.Everything, {**EVERYTHING, "amount": "abc"}),
    ("zoo.everything", codegen_zoo.Everything, {**EVERYTHING, "amount": "1.2.3"}),
    ("zoo.everything", codegen_zoo.Everything, {**EVERYTHING, "amount": ""}),
    ("zoo.everything", codegen_zoo.Everything, {**EVERYTHING, "ident": "not-a-uuid"}),
    ("zoo.everything", codegen_zoo.Everything, {**EVERYTHING, "when": "yesterday"}),
    ("zoo.everything", codegen_zoo.Everything, {**EVERYTHING, "literal": "c"}),
    ("zoo.everything", codegen_zoo.Everything, {**EVERYTHING, "color": "blue"}),
    ("zoo.everything", codegen_zoo.Everything, {**EVERYTHING, "pair": [1]}),
    ("zoo.everything", codegen_zoo.Everything, {**EVERYTHING, "pair": [1, "x", 3]}),
    ("zoo.everything", codegen_zoo.Everything, {**EVERYTHING, "tree": {"value": None}}),
    ("zoo.everything", codegen_zoo.Everything, {**EVERYTHING, "mapping": {"a": "x"}}),
    (
        "zoo.everything",
        codegen_zoo.Everything,
        {k: v for k, v in EVERYTHING.items() if k != "tree"},
    ),
    ("zoo.echo", codegen_zoo.EchoIn, {"text": "x" * 51}),
    ("zoo.named", codegen_zoo.Named, {"name": "a/b"}),
    ("zoo.named", codegen_zoo.Named, {"name": "José", "code": "12a"}),
    ("zoo.named", codegen_zoo.Named, {"name": "x", "word": "a  b"}),
]
VALID: list[tuple[str, type[BaseModel], Any]] = [
    ("zoo.everything", codegen_zoo.Everything, EVERYTHING),
    # The corpus's second payload, with its UUID in the canonical (dashed) spelling.
    (
        "zoo.everything",
        codegen_zoo.Everything,
        {**CORPUS[codegen_zoo.Everything][1], "ident": UUID},
    ),
    *[("zoo.echo", codegen_zoo.EchoIn, p) for p in CORPUS[codegen_zoo.EchoIn]],
    (
        "zoo.everything",
        codegen_zoo.Everything,
        {**EVERYTHING, "pet": {"kind": "dog", "good": False}},
    ),
    ("zoo.everything", codegen_zoo.Everything, {**EVERYTHING, "amount": " -1_000.5e3 "}),
    ("zoo.everything", codegen_zoo.Everything, {**EVERYTHING, "amount": ".5"}),
    ("zoo.everything", codegen_zoo.Everything, {**EVERYTHING, "amount": 2}),
    # \w, \d and \s are Unicode classes in Pydantic (Rust's regex): the schema says the same.
    ("zoo.named", codegen_zoo.Named, {"name": "José"}),
    ("zoo.named", codegen_zoo.Named, {"name": "Zoë 2", "code": "٣٤", "word": "naïve\u00a0…"}),
    ("zoo.named", codegen_zoo.Named, {"name": "日本語_テスト"}),
]


def test_ajv_and_pydantic_agree_on_the_zoo() -> None:
    cases = VALID + INVALID
    verdicts = ajv(ZOO, [(input_ref(action), payload) for action, _, payload in cases])
    for (action, model, payload), by_ajv in zip(cases, verdicts, strict=True):
        assert pydantic_accepts(model, payload) == by_ajv, (action, payload)
    assert verdicts == [True] * len(VALID) + [False] * len(INVALID)


# The documented exception (docs/codegen.md): the server validates in Pydantic's lax mode, which
# also takes some other spellings of a value; the schema describes the canonical JSON form.
LAX: list[Any] = [
    {**EVERYTHING, "defaulted": "7"},  # a numeric string for an int
    {**EVERYTHING, "when": 1_700_000_000},  # a Unix time for a datetime
    {**EVERYTHING, "pet": {"kind": "dog", "good": 0}},  # 0 and 1 for booleans
    {**EVERYTHING, "amount": "\uff11\uff12"},  # non-ASCII digits, which Decimal() reads
    {**EVERYTHING, "ident": UUID.replace("-", "")},  # a UUID without its dashes
    {
        **EVERYTHING,
        "when": "2026-11-25T03:18:32",
    },  # a naive datetime (RFC 3339 has an offset)
]


def test_lax_spellings_are_the_one_documented_exception() -> None:
    verdicts = ajv(ZOO, [(input_ref("zoo.everything"), p) for p in LAX])
    assert all(pydantic_accepts(codegen_zoo.Everything, p) for p in LAX)
    assert verdicts == [False] * len(LAX)


def test_a_no_input_action_accepts_what_the_server_ignores() -> None:
    # The server ignores 'data' for an action without an input model; the schema says so.
    payloads = [{}, {"x": 1}, 5, None, "text", []]
    assert ajv(ZOO, [(input_ref("zoo.ping"), p) for p in payloads]) == [True] * len(payloads)


def test_frames_validate_against_the_envelopes() -> None:
    frames = [
        ("#/$defs/ErrorFrame", {"type": "error", "id": None, "action": None, "error": {
            "code": "bad_request", "message": "m", "details": None}}),
        ("#/$defs/ResultFrame", {"type": "result", "id": "c1", "action": "a", "data": 1}),
        ("#/$defs/ResultFrame", {"type": "result", "id": 5, "action": "a", "data": 1}),
        ("#/$defs/ChunkFrame", {"type": "chunk", "id": "c", "action": "a", "seq": -1, "data": 1}),
    ]  # fmt: skip
    assert ajv(ZOO, frames) == [True, True, False, False]
