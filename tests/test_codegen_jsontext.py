"""dumps_indented writes exactly what json.dumps(indent=2, ensure_ascii=False) writes."""

from __future__ import annotations

import enum
import json
from typing import Any

import pytest

from mangum_ws.codegen.jsontext import dumps_indented


class Colour(enum.IntEnum):
    RED = 1


class Tag(str):
    pass


PLAIN: list[Any] = [
    {},
    [],
    "",
    0,
    -1,
    2**70,
    0.1,
    -2.5e-07,
    1e16,
    True,
    False,
    None,
    'é \u2028 \x00 " \\ \n \t ✓ 😀',
    {"a": {}, "b": [], "c": [[], [{}], {"d": [1, 2.0, None, True]}]},
    {"$defs": {"X": {"type": "object", "properties": {"y": {"default": [1, "z"]}}}}},
]
# What only json.dumps knows: the writer hands the whole document back to it.
UNPLAIN: list[Any] = [
    (1, 2),
    {"a": (1, [2])},
    {1: "int key"},
    {None: 1, True: 2, 1.5: 3},
    Colour.RED,
    [Tag("sub")],
    float("nan"),
    [float("inf"), float("-inf")],
]


@pytest.mark.parametrize("document", PLAIN + UNPLAIN, ids=repr)
def test_same_text_as_json_dumps(document: Any) -> None:
    assert dumps_indented(document) == json.dumps(document, indent=2, ensure_ascii=False)
