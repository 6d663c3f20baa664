"""Pydantic's JSON Schema made portable: what a strict validator (ajv strict) compiles and what
means the same in JavaScript as in Pydantic.

- Discriminated unions: Pydantic adds OpenAPI's ``discriminator`` keyword, which JSON Schema
  does not know. Each variant instead requires its tag, as a ``const`` (plain JSON Schema), so
  a payload without the tag, or with another variant's, matches no variant, as in Pydantic.
- Regex classes: Pydantic's default engine (Rust's ``regex``) reads ``\\d``, ``\\w`` and ``\\s``
  as Unicode classes, JavaScript as ASCII ones even with the ``u`` flag. They are written as the
  Unicode properties Rust uses, which both read alike. ``\\b``/``\\B`` and ``\\W`` inside ``[...]``
  have no such spelling and are left as they are (docs/codegen.md lists them).
- Formats: only those every ajv-formats build knows are kept (``uuid4`` becomes ``uuid``);
  another format becomes a ``$comment``, as a strict validator refuses formats it does not know.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DECIMAL_PATTERN", "KNOWN_FORMATS", "js_pattern", "portable", "tagged_variants"]

# The formats ajv-formats defines (and JSON Schema 2020-12 names).
KNOWN_FORMATS = frozenset(
    {
        "date",
        "time",
        "date-time",
        "duration",
        "uri",
        "uri-reference",
        "uri-template",
        "email",
        "hostname",
        "ipv4",
        "ipv6",
        "regex",
        "uuid",
        "json-pointer",
        "relative-json-pointer",
        "byte",
        "int32",
        "int64",
        "float",
        "double",
        "password",
        "binary",
    }
)

# What Python's Decimal() reads from a string, spelled for both engines: digits with single
# underscores between them, an optional point and exponent, surrounding blanks.
DECIMAL_PATTERN = (
    r"^[ \t\n\r]*[+-]?(?:[0-9](?:_?[0-9])*(?:\.(?:[0-9](?:_?[0-9])*)?)?|\.[0-9](?:_?[0-9])*)"
    r"(?:[eE][+-]?[0-9](?:_?[0-9])*)?[ \t\n\r]*$"
)

_WORD = r"\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}"
# Rust regex's Unicode classes, as JavaScript (with the u flag) and Rust both spell them.
_OUTSIDE = {
    "d": r"\p{Nd}",
    "D": r"\P{Nd}",
    "s": r"\p{White_Space}",
    "S": r"\P{White_Space}",
    "w": f"[{_WORD}]",
    "W": f"[^{_WORD}]",
}
_INSIDE = {**_OUTSIDE, "w": _WORD}
del _INSIDE["W"]  # a negated class inside a class: no spelling without JavaScript's v flag


def js_pattern(pattern: str) -> str:
    """``pattern`` with ``\\d \\w \\s`` (and negations) as Unicode properties."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            table = _INSIDE if in_class else _OUTSIDE
            out.append(table.get(nxt, char + nxt))
            i += 2
            continue
        if char == "[" and not in_class:
            in_class = True
            out.append(char)
            # A ']' first in a class is a literal.
            if pattern[i + 1 : i + 2] == "^":
                out.append("^")
                i += 1
            if pattern[i + 1 : i + 2] == "]":
                out.append("]")
                i += 1
        elif char == "]" and in_class:
            in_class = False
            out.append(char)
        else:
            out.append(char)
        i += 1
    return "".join(out)


def tagged_variants(schema: dict[str, Any]) -> dict[str, Any]:
    """A ``oneOf`` with an OpenAPI ``discriminator`` as plain JSON Schema: each variant
    requires its tag value(s), so exactly one variant matches a tagged payload."""
    discriminator = schema.pop("discriminator")
    tag = discriminator["propertyName"]
    tags_of: dict[str, list[str]] = {}
    for value, ref in discriminator.get("mapping", {}).items():
        if isinstance(ref, str):
            tags_of.setdefault(ref, []).append(value)
    variants = []
    for variant in schema["oneOf"]:
        values = tags_of.get(variant.get("$ref", "")) if isinstance(variant, dict) else None
        if values:
            tag_schema = {"const": values[0]} if len(values) == 1 else {"enum": values}
            variant = {
                **variant,
                "type": "object",
                "required": [tag],
                "properties": {tag: tag_schema},
            }
        variants.append(variant)
    return {**schema, "oneOf": variants}


_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "dependentSchemas")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMAS = (
    "items",
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
)


def portable(schema: Any) -> Any:
    """A copy of ``schema`` (and every subschema) made portable as the module says."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    if "discriminator" in out and isinstance(out.get("oneOf"), list):
        out = tagged_variants(out)
    for key in _SCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {name: portable(sub) for name, sub in out[key].items()}
    for key in _SCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [portable(sub) for sub in out[key]]
    for key in _SCHEMAS:
        if key in out:
            out[key] = portable(out[key])
    if isinstance(out.get("pattern"), str):
        out["pattern"] = js_pattern(out["pattern"])
    fmt = out.get("format")
    if isinstance(fmt, str) and fmt not in KNOWN_FORMATS:
        if fmt.startswith("uuid") and fmt[4:].isdigit():
            out["format"] = "uuid"
        else:
            del out["format"]
            out["$comment"] = f"format: {fmt} (checked by the server, not by this schema)"
    return out
