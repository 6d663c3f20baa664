"""TypeScript types from the JSON Schema pydantic generates: wire names, optional vs nullable."""

from __future__ import annotations

import json
import re
from typing import Any

_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")


class UnsupportedSchema(ValueError):
    """A schema construct that has no TypeScript translation here."""


def type_name(def_name: str) -> str:
    """A TS identifier for a $defs key: ``SendIn-Input`` -> ``SendInInput``."""
    words = re.split(r"[^A-Za-z0-9]+", def_name)
    name = "".join(w[:1].upper() + w[1:] for w in words if w)
    if not name or name[0].isdigit():
        name = f"T{name}"
    return name


def camel(action: str) -> str:
    """``chat.send`` -> ``chatSend``: a method name for an action."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", action) if w]
    if not words:
        raise UnsupportedSchema(f"action name {action!r} has no letters to name a method after")
    name = words[0][:1].lower() + words[0][1:] + "".join(w[:1].upper() + w[1:] for w in words[1:])
    return name if not name[0].isdigit() else f"_{name}"


def _key(name: str) -> str:
    return name if _IDENTIFIER.match(name) else json.dumps(name)


def _union(parts: list[str]) -> str:
    unique = list(dict.fromkeys(parts))
    if not unique:
        return "never"
    return (
        unique[0]
        if len(unique) == 1
        else " | ".join(f"({p})" if " => " in p else p for p in unique)
    )


def _comment(schema: dict[str, Any], indent: str) -> str:
    text = schema.get("description")
    if not isinstance(text, str) or not text.strip():
        return ""
    lines = text.strip().replace("*/", "*\\/").splitlines()
    if len(lines) == 1:
        return f"{indent}/** {lines[0]} */\n"
    body = "".join(f"{indent} * {line}".rstrip() + "\n" for line in lines)
    return f"{indent}/**\n{body}{indent} */\n"


class Emitter:
    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs
        self.names = {key: type_name(key) for key in defs}
        taken: dict[str, str] = {}
        for key, name in self.names.items():
            if name in taken:
                raise UnsupportedSchema(
                    f"$defs {taken[name]!r} and {key!r} would both be named {name} in TypeScript"
                )
            taken[name] = key

    def ref(self, ref: str) -> str:
        key = ref.removeprefix("#/$defs/")
        if key not in self.names:
            raise UnsupportedSchema(f"unresolved reference {ref!r}")
        return self.names[key]

    def type(self, schema: Any, indent: str = "") -> str:
        if schema is True or schema == {}:
            return "unknown"
        if schema is False:
            return "never"
        if not isinstance(schema, dict):
            raise UnsupportedSchema(f"not a schema: {schema!r}")
        if "$ref" in schema:
            return self.ref(schema["$ref"])
        if "const" in schema:
            return json.dumps(schema["const"])
        if "enum" in schema:
            return _union([json.dumps(v) for v in schema["enum"]])
        for keyword in ("anyOf", "oneOf"):
            if keyword in schema:
                return _union([self.type(s, indent) for s in schema[keyword]])
        if "allOf" in schema:
            return " & ".join(self.type(s, indent) for s in schema["allOf"])
        kind = schema.get("type")
        if isinstance(kind, list):
            return _union([self.type({**schema, "type": k}, indent) for k in kind])
        if kind in ("string", "boolean", "null"):
            return str(kind)
        if kind in ("integer", "number"):
            return "number"
        if kind == "array":
            return self._array(schema, indent)
        if kind == "object" or "properties" in schema:
            return self._object(schema, indent)
        if kind is None:
            return "unknown"
        raise UnsupportedSchema(f"type {kind!r} has no TypeScript translation")

    def _array(self, schema: dict[str, Any], indent: str) -> str:
        prefix = schema.get("prefixItems")
        if prefix is not None:
            items = [self.type(s, indent) for s in prefix]
            rest = schema.get("items", False)
            if rest is not False and schema.get("maxItems") != len(prefix):
                items.append(f"...Array<{self.type(rest, indent)}>")
            return f"[{', '.join(items)}]"
        return f"Array<{self.type(schema.get('items', {}), indent)}>"

    def _object(self, schema: dict[str, Any], indent: str) -> str:
        properties: dict[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        if not properties:
            value = "unknown" if extra in (None, True) else self.type(extra, indent)
            return f"Record<string, {value}>"
        required = set(schema.get("required", []))
        inner = indent + "  "
        lines = ["{"]
        for name, prop in properties.items():
            doc = _comment(prop, inner)
            if doc:
                lines.append(doc.rstrip("\n"))
            optional = "" if name in required else "?"
            lines.append(f"{inner}{_key(name)}{optional}: {self.type(prop, inner)};")
        if extra not in (None, False):
            value = "unknown" if extra is True else self.type(extra, inner)
            lines.append(f"{inner}[key: string]: {value};")
        lines.append(f"{indent}}}")
        return "\n".join(line for line in lines if line)

    def declarations(self) -> str:
        out = []
        for key, schema in self.defs.items():
            name = self.names[key]
            body = self.type(schema)
            doc = _comment(schema, "")
            if body.startswith("{"):
                out.append(f"{doc}export interface {name} {body}\n")
            else:
                out.append(f"{doc}export type {name} = {body};\n")
        return "\n".join(out)
