"""Route selection as API Gateway does it: ``$request.body.<path>`` picks a custom route key."""

from __future__ import annotations

from collections.abc import Iterable

from ..protocol import select_route

_PREFIX = "$request.body."


class RouteSelector:
    def __init__(self, expression: str, route_keys: Iterable[str]) -> None:
        if not expression.startswith(_PREFIX) or len(expression) == len(_PREFIX):
            raise ValueError(
                f"unsupported route selection expression {expression!r}: only "
                "'$request.body.<field>[.<field>...]' is emulated"
            )
        self.expression = expression
        self.path = expression[len(_PREFIX) :].split(".")
        self.route_keys = frozenset(route_keys)

    def select(self, body: str) -> str:
        """The custom route key the body selects, or ``$default`` (non-JSON, no field, no route)."""
        return select_route(body, self.route_keys, self.path)
