"""The registry: hooks, typed actions and typed events, read once at registration."""

from __future__ import annotations

import collections.abc
import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import (
    TYPE_CHECKING,
    Any,
    Generic,
    NamedTuple,
    TypeVar,
    get_args,
    get_origin,
    get_type_hints,
)

from fastapi.params import Depends
from pydantic import BaseModel, PydanticSchemaGenerationError, TypeAdapter

from .connection import Connection, Sender
from .depends import Dependency, depends_of, read_dependency
from .errors import RegistrationError
from .sending import SendReport

if TYPE_CHECKING:
    from .auth import AuthorizerSpec

T = TypeVar("T")
_NO_OUTPUT: Any = type(None)


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _is_connection(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, Connection)


_STREAM_ORIGINS = (
    collections.abc.AsyncIterator,
    collections.abc.AsyncIterable,
    collections.abc.AsyncGenerator,
)


def _chunk_type(annotation: Any) -> Any:
    """T of ``AsyncIterator[T]`` / ``AsyncIterable[T]`` / ``AsyncGenerator[T, None]``, or None."""
    if get_origin(annotation) in _STREAM_ORIGINS and get_args(annotation):
        return get_args(annotation)[0]
    return None


def is_async_callable(func: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 - async callable objects count too
    )


def _hints(func: Callable[..., Any], what: str) -> dict[str, Any]:
    try:
        return get_type_hints(func)
    except Exception as exc:  # a NameError from a forward reference, usually
        raise RegistrationError(f"{what}: cannot resolve its annotations: {exc}") from exc


def _adapter(tp: Any, what: str) -> TypeAdapter[Any]:
    try:
        return TypeAdapter(tp)
    except PydanticSchemaGenerationError as exc:
        raise RegistrationError(
            f"{what}: {tp!r} is not a type Pydantic can validate: {exc}"
        ) from exc


# The specs are NamedTuples, not frozen dataclasses: they are defined at import, and on Python
# 3.11 a frozen dataclass takes ~0.6 ms to build against ~0.07 ms, Lambda cold start time
# (benchmarks/coldstart.py).
class Hook(NamedTuple):
    """A lifecycle hook; its first parameter gets a Connection or the seed's connection id."""

    func: Callable[..., Any]
    wants_connection: bool
    is_async: bool

    @classmethod
    def read(cls, func: Callable[..., Any], kind: str, arity: int) -> Hook:
        what = f"{kind} hook {getattr(func, '__qualname__', func)!r}"
        params = list(inspect.signature(func).parameters.values())
        if len(params) != arity or any(
            p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params
        ):
            shape = "(connection_id)" if arity == 1 else "(connection_id, data)"
            raise RegistrationError(
                f"{what} must take {arity} positional parameter(s) {shape}; the first may be "
                "annotated `Connection` to receive the whole connection"
            )
        first = _hints(func, what).get(params[0].name)
        return cls(func, _is_connection(first), is_async_callable(func))


class ActionSpec(NamedTuple):
    """A typed action, read from its handler's signature once, at registration."""

    name: str
    func: Callable[..., Any]
    is_async: bool
    input_param: str | None
    connection_param: str | None
    input_adapter: TypeAdapter[Any] | None
    output_adapter: TypeAdapter[Any] | None
    input_type: Any
    output_type: Any
    route: str | None = None
    description: str | None = None
    # An async generator: each value it yields is a chunk (output_type describes a chunk).
    stream: bool = False
    # Runs past the MESSAGE invocation: on Lambda in an asynchronous invocation of the same
    # function, in-process as a task of its own (background.py).
    background: bool = False
    # FastAPI Depends, resolved per call: (parameter, dependency); guards have no parameter.
    dependencies: tuple[tuple[str | None, Dependency], ...] = ()

    @classmethod
    def read(
        cls,
        name: str,
        func: Callable[..., Any],
        *,
        route: str | None,
        input: Any = None,
        output: Any = None,
        background: bool = False,
        dependencies: Sequence[Any] = (),
    ) -> ActionSpec:
        what = f"action {name!r} ({getattr(func, '__qualname__', func)!r})"
        hints = _hints(func, what)
        extras = get_type_hints(func, include_extras=True)  # _hints succeeded: so does this
        problems: list[str] = []
        input_param: str | None = None
        connection_param: str | None = None
        depends: list[tuple[str | None, Dependency]] = []
        for marker in dependencies:
            if not isinstance(marker, Depends):
                raise RegistrationError(f"{what}: dependencies= takes Depends(...), not {marker!r}")
            depends.append((None, read_dependency(marker, what)))
        for param in inspect.signature(func).parameters.values():
            annotation = hints.get(param.name)
            marker = depends_of(param, extras.get(param.name))
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                problems.append(f"*{param.name} / **{param.name} parameters are not supported")
            elif marker is not None:
                depends.append((param.name, read_dependency(marker, what)))
            elif _is_connection(annotation):
                if connection_param is not None:
                    problems.append("more than one Connection parameter")
                connection_param = param.name
            elif input_param is None and (_is_model(annotation) or input is not None):
                input_param = param.name
            elif param.default is param.empty:
                problems.append(
                    f"parameter {param.name!r} is neither the input (annotate it with a "
                    "Pydantic model, or pass input=), a Connection nor a Depends(...)"
                )
        input_type = input if input is not None else hints.get(input_param) if input_param else None
        if input is not None and input_param is None:
            problems.append("input= was given but the handler has no parameter to receive it")
        output_type = output if output is not None else hints.get("return", _NO_OUTPUT)
        stream = inspect.isasyncgenfunction(func)
        if stream and output is None:
            output_type = _chunk_type(output_type)
            if output_type is None:
                problems.append(
                    "a stream (an async generator) must annotate its return as "
                    "AsyncIterator[Model], or pass output= with the chunk type"
                )
        elif inspect.isgeneratorfunction(func):
            problems.append(
                "a sync generator cannot be a stream: make it an async generator "
                "(`async def ... -> AsyncIterator[Model]`)"
            )
        if problems:
            raise RegistrationError(f"{what}: " + "; ".join(problems))
        return cls(
            name=name,
            func=func,
            is_async=is_async_callable(func),
            input_param=input_param,
            connection_param=connection_param,
            input_adapter=_adapter(input_type, what) if input_type is not None else None,
            output_adapter=None if output_type is _NO_OUTPUT else _adapter(output_type, what),
            input_type=input_type,
            output_type=None if output_type is _NO_OUTPUT else output_type,
            route=route,
            description=inspect.getdoc(func),
            stream=stream,
            background=background,
            dependencies=tuple(depends),
        )


class EventSpec(NamedTuple, Generic[T]):
    """A typed server push: ``await spec.emit(data, connection_ids=...)`` returns the gone ids,
    ``await spec.publish(topic, data)`` the report of a push to a topic's subscribers."""

    name: str
    model: type[T]
    adapter: TypeAdapter[T]
    sender: Sender
    description: str | None = None

    async def emit(self, data: T, *, connection_ids: Iterable[str]) -> set[str]:
        return await self.sender.emit(self.name, data, connection_ids=connection_ids)

    async def publish(self, topic: str, data: T) -> SendReport:
        return await self.sender.publish(topic, self.name, data)


@dataclass(slots=True)
class Registry:
    """Everything the routing, validation and codegen read."""

    actions: dict[str, ActionSpec] = field(default_factory=dict)
    routes: dict[str, ActionSpec] = field(default_factory=dict)
    events: dict[str, EventSpec[Any]] = field(default_factory=dict)
    on_connect: Hook | None = None
    on_disconnect: Hook | None = None
    on_message: Hook | None = None
    authorizer: AuthorizerSpec | None = None

    def add_action(self, spec: ActionSpec) -> None:
        if not spec.name or not isinstance(spec.name, str):
            raise RegistrationError(f"an action name must be a non-empty string, not {spec.name!r}")
        if spec.name in self.actions:
            raise RegistrationError(f"action {spec.name!r} is registered twice")
        if spec.route is not None:
            if not spec.route or spec.route.startswith("$"):
                raise RegistrationError(
                    f"action {spec.name!r}: route key {spec.route!r} is reserved; $connect, "
                    "$disconnect and $default are routed by mangum-ws itself"
                )
            if spec.route in self.routes:
                raise RegistrationError(
                    f"route key {spec.route!r} is bound to both {self.routes[spec.route].name!r} "
                    f"and {spec.name!r}"
                )
            self.routes[spec.route] = spec
        self.actions[spec.name] = spec

    def add_event(self, spec: EventSpec[Any]) -> None:
        if not spec.name or not isinstance(spec.name, str):
            raise RegistrationError(f"an event name must be a non-empty string, not {spec.name!r}")
        if spec.name in self.events:
            raise RegistrationError(f"event {spec.name!r} is registered twice")
        self.events[spec.name] = spec
