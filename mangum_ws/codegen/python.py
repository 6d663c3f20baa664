"""client.py: one module with the app's models (datamodel-code-generator, from the same schemas
as schema.json), the Python client runtime (client_runtime.py) and a typed method per action.

    async with Client("wss://.../prod", query={"token": token}) as client:
        out = await client.chat_send(SendIn(text="hi"))          # SendOut
        async for token in client.assistant_reply(AskIn(prompt="hi")): ...
        client.on_chat_message(print)                             # ChatMessage

``Client`` passes the registry's ``SCHEMA_HASH`` to ``$hello``: the server says if it differs.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

from .portable import DECIMAL_PATTERN
from .schema import ENVELOPES, has_input, schema_hash
from .typescript import UnsupportedSchema, type_name

__all__ = ["build_python_client", "snake"]

RUNTIME_NAMES = frozenset(
    {
        "MAX_FRAME_BYTES",
        "ActionCallError",
        "ConnectionState",
        "EventCallback",
        "EventStream",
        "MangumWSClient",
        "SessionInfo",
        "HELLO_RETRIES",
        "SCHEMA_HASH",
        "Client",
        "BaseModel",
        "TypeAdapter",
        "Any",
        "Literal",
        "Model",
    }
)
# Methods the runtime already has: no action may be named after one.
RUNTIME_METHODS = frozenset(
    {
        "connect",
        "close",
        "request",
        "request_stream",
        "on",
        "events",
        "on_open",
        "on_state_change",
        "connection_state",
        # Session options, kept as attributes: a method of the same name would be hidden.
        "session",
        "sessions",
        "schema_hash",
        "on_session",
        "on_schema_mismatch",
        "gap_timeout",
        "generated_schema_hash",
    }
)
_HEADER_END = "# --- runtime ---"
_IMPORT = re.compile(r"^(import [\w.]+|from [\w.]+ import .+)$")


def snake(name: str) -> str:
    """``chat.send`` -> ``chat_send``, ``getUser`` -> ``get_user``: a method name."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    words = [w for w in re.split(r"[^A-Za-z0-9]+", spaced) if w]
    if not words:
        raise UnsupportedSchema(f"{name!r} has no letters to name a Python method after")
    method = "_".join(words).lower()
    return f"_{method}" if method[0].isdigit() else method


def _runtime() -> tuple[list[str], str]:
    """The runtime's import lines and its body (from the marker on)."""
    source = resources.files("mangum_ws.codegen").joinpath("client_runtime.py").read_text("utf-8")
    head, _, body = source.partition(_HEADER_END)
    imports = [line for line in head.splitlines() if _IMPORT.match(line)]
    return [i for i in imports if "__future__" not in i], body.strip("\n")


class _Types:
    """A Python type for each schema an action or event uses: its model's class, or a class
    of its own (``ZooListOutput``, a RootModel) for a schema that is not a reference."""

    def __init__(self, defs: dict[str, Any]) -> None:
        self.names = {key: type_name(key) for key in defs}
        self.defs = {self.names[key]: _renamed(schema, self.names) for key, schema in defs.items()}

    def of(self, schema: Any, owner: str) -> str:
        if schema == {"type": "null"}:
            return "None"
        ref = schema.get("$ref") if isinstance(schema, dict) and len(schema) == 1 else None
        if isinstance(ref, str):
            return self.names[ref.removeprefix("#/$defs/")]
        if owner in self.defs:
            raise UnsupportedSchema(f"a model named {owner} clashes with a generated type")
        self.defs[owner] = _renamed(schema, self.names)
        return owner


def _renamed(schema: Any, names: dict[str, str]) -> Any:
    """``schema`` with every ``$defs`` reference renamed to its Python class name, and decimals
    marked as such (``format: decimal``), so that the models type them ``Decimal``."""
    if isinstance(schema, list):
        return [_renamed(item, names) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if schema.get("pattern") == DECIMAL_PATTERN:
        return {k: v for k, v in schema.items() if k != "pattern"} | {"format": "decimal"}
    if isinstance(schema.get("default"), str) and any(
        isinstance(branch, dict) and branch.get("pattern") == DECIMAL_PATTERN
        for branch in schema.get("anyOf", ())
    ):
        # A decimal's default is its string ("0"): as a number it types as ``float | Decimal``.
        number = float(schema["default"])
        schema = {**schema, "default": int(number) if number.is_integer() else number}
    out = {}
    for key, value in schema.items():
        if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
            out[key] = "#/$defs/" + names[value.removeprefix("#/$defs/")]
        elif key in ("default", "const", "enum", "examples"):
            out[key] = value
        else:
            out[key] = _renamed(value, names)
    return out


def _models(defs: dict[str, Any]) -> tuple[list[str], str]:
    """datamodel-code-generator's models for ``defs``: their import lines and their classes."""
    from datamodel_code_generator import generate as datamodel_codegen
    from datamodel_code_generator.enums import DataModelType, InputFileType
    from datamodel_code_generator.format import PythonVersion

    source = datamodel_codegen(
        json.dumps({"$defs": defs}),
        input_file_type=InputFileType.JsonSchema,
        output_model_type=DataModelType.PydanticV2BaseModel,
        target_python_version=PythonVersion.PY_311,
        disable_timestamp=True,
        use_annotated=True,
        use_schema_description=True,
        use_field_description=True,
        capitalise_enum_members=True,
        set_default_enum_member=True,
        strict_nullable=True,
        formatters=[],
    )
    if not isinstance(source, str):
        raise UnsupportedSchema("datamodel-code-generator wrote no module")
    lines = source.splitlines()
    imports = [line for line in lines if _IMPORT.match(line)]
    first = next(i for i, line in enumerate(lines) if line.startswith("class "))
    body = "\n".join(lines[first:])
    # The document's own (empty) root model: the client has no use for it.
    body = re.sub(r"class Model\(RootModel\[Any\]\):\n    root: Any\n*", "", body)
    # One pass for every class name: a search per model would read the body once per model.
    written = set(re.findall(r"^class (\w+)\(", body, re.MULTILINE))
    for name in defs:
        if name not in written:
            raise UnsupportedSchema(f"datamodel-code-generator did not name a model {name}")
    return [i for i in imports if "__future__" not in i], body.strip("\n")


def build_python_client(catalogue: dict[str, Any], title: str) -> str:
    models = {k: v for k, v in catalogue["$defs"].items() if k not in ENVELOPES}
    types = _Types(models)
    clash = (RUNTIME_NAMES | RUNTIME_METHODS) & set(types.defs)
    if clash:
        raise UnsupportedSchema(
            f"model name(s) {sorted(clash)} clash with the Python client's names; rename them"
        )
    methods: list[str] = []
    taken: dict[str, str] = {name: "the runtime" for name in RUNTIME_METHODS}

    def claim(method: str, what: str) -> None:
        if method in taken:
            raise UnsupportedSchema(f"{what} and {taken[method]} would both be {method}()")
        taken[method] = what

    for name, entry in catalogue["actions"].items():
        method = snake(name)
        claim(method, f"action {name!r}")
        base = type_name(name)
        doc = _docstring(entry.get("description"))
        params, call = "self, *, timeout: float | None = None", f"{json.dumps(name)}"
        if has_input(entry):
            input_type = types.of(entry["input"], f"{base}Input")
            params = f"self, data: {input_type}, *, timeout: float | None = None"
            call += f", _dump({input_type}, data)"
        if entry.get("stream"):
            chunk = types.of(entry["chunk"], f"{base}Chunk")
            methods.append(
                f"    async def {method}({params}) -> AsyncIterator[{chunk}]:\n{doc}"
                f"        async with contextlib.aclosing(\n"
                f"            self.request_stream({call}, timeout=timeout)\n"
                f"        ) as chunks:\n"
                f"            async for chunk in chunks:\n"
                f"                yield _load({chunk}, chunk)\n"
            )
            continue
        output = types.of(entry["output"], f"{base}Output")
        if output == "None":
            body = f"        await self.request({call}, timeout=timeout)\n"
        else:
            body = f"        return _load({output}, await self.request({call}, timeout=timeout))\n"
        methods.append(f"    async def {method}({params}) -> {output}:\n{doc}{body}")
    for name, schema in catalogue["events"].items():
        method = snake(name)
        data = types.of(schema, f"{type_name(name)}Event")
        claim(f"on_{method}", f"event {name!r}")
        claim(f"{method}_events", f"event {name!r}")
        methods.append(
            f"    def on_{method}(\n"
            f"        self, callback: Callable[[{data}], Awaitable[None] | None]\n"
            f"    ) -> Callable[[], None]:\n"
            f'        """Call ``callback`` with each {name} event; returns an unsubscribe."""\n'
            f"        return self.on(\n"
            f"            {json.dumps(name)}, lambda raw: callback(_load({data}, raw))\n"
            f"        )\n"
        )
        methods.append(
            f"    def {method}_events(self) -> EventStream[{data}]:\n"
            f'        """Each {name} event from now on: ``async for data in ...``."""\n'
            f"        return self.events({json.dumps(name)}, functools.partial(_load, {data}))\n"
        )
    model_imports, model_source = _models(types.defs)
    runtime_imports, runtime_source = _runtime()
    imports = sorted(
        set(model_imports)
        | set(runtime_imports)
        | {"import contextlib", "import functools", "from pydantic import TypeAdapter"}
        | {"from collections.abc import AsyncIterator, Awaitable, Callable"}
    )
    return "\n".join(
        [
            f'"""Generated by mangum-ws from {title}. Do not edit: python -m mangum_ws.codegen.',
            "",
            "Models, the client runtime and ``Client``: a typed method per action and per event.",
            '"""',
            "",
            "from __future__ import annotations",
            "",
            *imports,
            "",
            model_source,
            "",
            runtime_source,
            "",
            "",
            "_ADAPTERS: dict[object, TypeAdapter[Any]] = {}",
            "",
            "",
            "def _adapter(tp: type[_T]) -> TypeAdapter[_T]:",
            "    adapter = _ADAPTERS.get(tp)",
            "    if adapter is None:",
            "        adapter = _ADAPTERS[tp] = TypeAdapter(tp)",
            "    return adapter",
            "",
            "",
            "def _load(tp: type[_T], data: Any) -> _T:",
            "    return _adapter(tp).validate_python(data)",
            "",
            "",
            "def _dump(tp: type[_T], value: _T) -> Any:",
            '    return _adapter(tp).dump_python(value, mode="json", by_alias=True)',
            "",
            "",
            "#: The registry's schema hash: ``$hello`` sends it; the server says if it differs.",
            f"SCHEMA_HASH = {json.dumps(schema_hash(catalogue))}",
            "",
            "",
            "class Client(MangumWSClient):",
            f'    """The {title} API: one typed method per action, two per event."""',
            "",
            "    generated_schema_hash = SCHEMA_HASH",
            *([""] if methods else []),
            "\n".join(methods).rstrip("\n"),
            "",
        ]
    )


def _docstring(text: str | None) -> str:
    if not text:
        return ""
    body = text.strip().replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    lines = body.splitlines()
    if len(lines) == 1:
        return f'        """{lines[0]}"""\n'
    inner = "".join(f"        {line}".rstrip() + "\n" for line in lines)
    return f'        """\n{inner}        """\n'
