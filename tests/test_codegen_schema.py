"""schema.json: valid 2020-12, collision-free names, and it accepts what Pydantic accepts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import JsonSchemaMode

from mangum_ws.codegen import generate
from mangum_ws.codegen.schema import NO_INPUT, REF_TEMPLATE, WireSchema
from tests import codegen_zoo, codegen_zoo_other
from tests.codegen_zoo import CORPUS
from tests.support.modules import load_fresh

SCHEMA: dict[str, Any] = json.loads(generate(codegen_zoo.ws, "zoo")["schema.json"])
EVENTS: dict[str, Any] = SCHEMA["$defs"]["mangum-ws:events"]["properties"]


def entries() -> dict[str, dict[str, Any]]:
    """Each action's catalogue entry, read back from schema.json: input, output, stream, ..."""
    out = {}
    for name, schema in SCHEMA["$defs"]["mangum-ws:actions"]["properties"].items():
        entry = {
            key: value["const"] if key in ("stream", "route") else value
            for key, value in schema["properties"].items()
        }
        if "description" in schema:
            entry["description"] = schema["description"]
        out[name] = entry
    return out


ACTIONS = entries()


def validator(subschema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({**subschema, "$defs": SCHEMA["$defs"]})


def test_schema_is_valid_2020_12() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    # Against the meta-schema without its "regex" format check: that one compiles patterns with
    # Python's re, and schema.json's patterns are ECMA-262 ones, as JSON Schema specifies
    # (ajv compiles them: test_codegen_ajv.py).
    meta = jsonschema.Draft202012Validator(jsonschema.Draft202012Validator.META_SCHEMA)
    meta.validate(SCHEMA)
    for entry in ACTIONS.values():
        for part in ("input", "output", "chunk"):
            meta.validate({**entry.get(part, {}), "$defs": {}})


def test_every_model_action_event_and_envelope_is_there() -> None:
    assert set(ACTIONS) == set(codegen_zoo.ws.registry.actions)
    assert set(EVENTS) == {"tick", "everything.changed"}
    for name in ("Request", "ResultFrame", "ChunkFrame", "ErrorFrame", "EventFrame", "ErrorCode"):
        assert name in SCHEMA["$defs"]
    assert ACTIONS["zoo.ping"] == {"input": NO_INPUT, "output": {"type": "null"}}
    assert ACTIONS["zoo.list"]["output"] == {
        "type": "array",
        "items": {"enum": ["x", "y"], "type": "string"},
    }
    assert ACTIONS["zoo.everything"]["description"] == "Round-trips every shape."


def test_a_stream_describes_its_chunks_and_answers_null() -> None:
    assert ACTIONS["zoo.count"] == {
        "input": {"$ref": "#/$defs/CountIn"},
        "output": {"type": "null"},
        "stream": True,
        "chunk": {"$ref": "#/$defs/Token"},
        "description": "Yields tokens 0 .. upto-1; fails at fail_at.",
    }
    assert ACTIONS["zoo.letters"]["chunk"] == {"type": "string"}
    # Actions that answer once are as they were: no stream key, no chunk.
    answers_once = [e for e in ACTIONS.values() if "stream" not in e]
    assert len(answers_once) == len(ACTIONS) - 2
    assert not any("chunk" in entry for entry in answers_once)
    assert "cancelled" in SCHEMA["$defs"]["ErrorCode"]["enum"]

    token = codegen_zoo.Token(index=0, text="t0").model_dump(mode="json", by_alias=True)
    validator(ACTIONS["zoo.count"]["chunk"]).validate(token)
    frame = {"type": "chunk", "id": "c1", "action": "zoo.count", "seq": 0, "data": token}
    validator({"$ref": "#/$defs/ChunkFrame"}).validate(frame)
    for wrong in ({**frame, "seq": -1}, {**frame, "id": None}, {**frame, "type": "result"}):
        with pytest.raises(jsonschema.ValidationError):
            validator({"$ref": "#/$defs/ChunkFrame"}).validate(wrong)
    with pytest.raises(jsonschema.ValidationError):
        validator(ACTIONS["zoo.count"]["chunk"]).validate({"index": "0"})


def test_same_class_name_in_two_modules_does_not_collide() -> None:
    items = [key for key in SCHEMA["$defs"] if key.endswith("Item-Input")]
    assert len(items) == 2
    skus = [SCHEMA["$defs"][k] for k in items if "sku" in SCHEMA["$defs"][k]["properties"]]
    assert len(skus) == 1


@pytest.mark.parametrize("model", list(CORPUS), ids=lambda m: m.__name__)
@pytest.mark.parametrize("mode", ["validation", "serialization"])
def test_everything_pydantic_accepts_the_schema_accepts(
    model: type[BaseModel], mode: JsonSchemaMode
) -> None:
    by_key, top = TypeAdapter.json_schemas(
        [("m", mode, TypeAdapter(model))], ref_template=REF_TEMPLATE, schema_generator=WireSchema
    )
    check = jsonschema.Draft202012Validator({**by_key[("m", mode)], "$defs": top["$defs"]})
    for payload in CORPUS[model]:
        instance = model.model_validate(payload)  # Pydantic accepts it, so the schema must
        check.validate(
            payload if mode == "validation" else instance.model_dump(mode="json", by_alias=True)
        )


def test_the_app_schema_accepts_the_corpus_through_actions() -> None:
    everything = ACTIONS["zoo.everything"]
    for payload in CORPUS[codegen_zoo.Everything]:
        validator(everything["input"]).validate(payload)
        dumped = codegen_zoo.Everything.model_validate(payload).model_dump(
            mode="json", by_alias=True
        )
        validator(everything["output"]).validate(dumped)
        validator(EVENTS["everything.changed"]).validate(dumped)
    with pytest.raises(jsonschema.ValidationError):
        validator(everything["input"]).validate({"required_text": 1})


def test_generation_is_deterministic_across_processes(tmp_path: Path) -> None:
    outputs = []
    for seed in ("0", "12345"):
        out = tmp_path / seed
        subprocess.run(
            [sys.executable, "-m", "mangum_ws.codegen", "tests.codegen_zoo:ws", "--out", str(out)],
            check=True,
            capture_output=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
            cwd=Path(__file__).parent.parent,
            timeout=120,
        )
        outputs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert outputs[0] == outputs[1]
    assert set(outputs[0]) == {"schema.json", "asyncapi.json", "client.ts"}
    assert (
        generate(codegen_zoo.ws, "tests.codegen_zoo:ws")["client.ts"].encode()
        == outputs[0]["client.ts"]
    )


def test_datamodel_code_generator_reads_the_schema_back(tmp_path: Path) -> None:
    """Another tool turns schema.json into Pydantic models that accept the same payloads."""
    schema_path = tmp_path / "schema.json"
    schema_path.write_text(json.dumps({"$defs": SCHEMA["$defs"]}))
    out = tmp_path / "models.py"
    codegen = Path(sys.executable).with_name("datamodel-codegen")
    subprocess.run(
        [
            str(codegen),
            "--input",
            str(schema_path),
            "--input-file-type",
            "jsonschema",
            "--output",
            str(out),
            "--output-model-type",
            "pydantic_v2.BaseModel",
            "--disable-timestamp",
            "--use-annotated",
            "--capitalise-enum-members",
            "--formatters",
            "black",
            "isort",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    module = load_fresh(out, "roundtrip_models")
    generated = {
        codegen_zoo.Everything: module.EverythingInput,
        codegen_zoo.EchoIn: module.EchoIn,
        codegen_zoo.TreeNode: module.TreeNodeInput,
        codegen_zoo_other.Item: module.TestsCodegenZooOtherItemInput,
    }
    for model, payloads in CORPUS.items():
        for payload in payloads:
            # warnings=False: datamodel-codegen writes an IntEnum default as a bare int.
            parsed = generated[model].model_validate(payload)
            theirs = json.loads(parsed.model_dump_json(by_alias=True, warnings=False))
            ours = model.model_validate(payload).model_dump(mode="json", by_alias=True)
            # The same fields come out, whichever models read the payload.
            assert set(theirs) == set(ours), model


def test_defaults_are_written_as_pydantic_writes_them() -> None:
    """WireSchema hands plain JSON defaults back as they are; every other default still goes
    through Pydantic's encoding, so each default reads as in Pydantic's own schema."""
    import datetime
    import decimal
    import enum

    class Colour(enum.Enum):
        RED = "red"

    class Defaults(BaseModel):
        text: str = "é"
        number: int = 2**70
        ratio: float = 0.5
        flag: bool = False
        nothing: None = None
        nested: dict[str, list[int | str | None]] = {"a": [1, "b", None]}
        pair: tuple[int, str] = (1, "x")
        when: datetime.date = datetime.date(2026, 1, 2)
        money: decimal.Decimal = decimal.Decimal("1.50")
        colour: Colour = Colour.RED
        infinite: float = float("inf")

    for mode in ("validation", "serialization"):
        ours = Defaults.model_json_schema(mode=mode, schema_generator=WireSchema)
        stock = Defaults.model_json_schema(mode=mode)
        assert {k: v.get("default") for k, v in ours["properties"].items()} == {
            k: v.get("default") for k, v in stock["properties"].items()
        }
        assert ours["properties"]["pair"]["default"] == [1, "x"]
