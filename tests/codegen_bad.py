"""Targets the codegen CLI must refuse with one clear line."""

from typing import Any

from pydantic import BaseModel
from pydantic_core import core_schema

from mangum_ws import MangumWS


class Opaque:
    """Validates, but has no JSON form anyone could describe."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(lambda value: value)


class HoldsOpaque(BaseModel):
    thing: Opaque


ws = MangumWS()


@ws.action("bad")
async def bad(data: HoldsOpaque) -> None: ...


not_a_ws = "just a string"
