"""FastAPI's ``Depends`` on actions: dependencies resolved per call from the Connection.

Read once, at registration (FastAPI's way): every parameter of a dependency is either the
``Connection`` or another ``Depends``. Per call they resolve as FastAPI resolves them:
sub-dependencies first, sync functions in a worker thread, each dependency once per call
unless ``use_cache=False``, and ``yield`` dependencies entered in an exit stack that closes
after the action (the action's exception is thrown into them, as FastAPI does).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, NamedTuple, get_args, get_origin, get_type_hints

import anyio.to_thread
from fastapi.params import Depends

from .connection import Connection
from .errors import RegistrationError

CONNECTION = "connection"  # the marker of a parameter that gets the Connection


class Dependency(NamedTuple):
    func: Callable[..., Any]
    kind: str  # "async" | "sync" | "asyncgen" | "gen"
    # (parameter, CONNECTION or the Dependency it gets)
    params: tuple[tuple[str, Any], ...]
    use_cache: bool


def depends_of(param: inspect.Parameter, annotation: Any) -> Depends | None:
    """The ``Depends`` of a parameter: its default, or in ``Annotated[T, Depends(f)]``."""
    if isinstance(param.default, Depends):
        return param.default
    if get_origin(annotation) is Annotated:
        return next((m for m in get_args(annotation)[1:] if isinstance(m, Depends)), None)
    return None


def is_connection(annotation: Any) -> bool:
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return isinstance(annotation, type) and issubclass(annotation, Connection)


def _kind(func: Callable[..., Any]) -> str:
    call = func if inspect.isroutine(func) else getattr(func, "__call__", func)  # noqa: B004
    if inspect.isasyncgenfunction(call):
        return "asyncgen"
    if inspect.isgeneratorfunction(call):
        return "gen"
    return "async" if inspect.iscoroutinefunction(call) else "sync"


def read_dependency(
    marker: Depends, what: str, seen: tuple[Callable[..., Any], ...] = ()
) -> Dependency:
    func = marker.dependency
    if func is None:
        raise RegistrationError(f"{what}: Depends() needs the dependency: Depends(f)")
    name = getattr(func, "__qualname__", repr(func))
    if func in seen:
        raise RegistrationError(f"{what}: dependency {name!r} depends on itself")
    try:
        hints = get_type_hints(func, include_extras=True)
    except Exception as exc:
        raise RegistrationError(
            f"{what}: cannot resolve the annotations of {name!r}: {exc}"
        ) from exc
    params: list[tuple[str, Any]] = []
    for param in inspect.signature(func).parameters.values():
        annotation = hints.get(param.name)
        sub = depends_of(param, annotation)
        if sub is not None:
            params.append((param.name, read_dependency(sub, what, (*seen, func))))
        elif is_connection(annotation):
            params.append((param.name, CONNECTION))
        elif param.default is param.empty and param.kind not in (
            param.VAR_POSITIONAL,
            param.VAR_KEYWORD,
        ):
            raise RegistrationError(
                f"{what}: parameter {param.name!r} of dependency {name!r} is neither a "
                "Connection nor a Depends(...)"
            )
    return Dependency(func, _kind(func), tuple(params), marker.use_cache)


class Resolver:
    """One call's dependencies: their cache and the exit stack of the ``yield`` ones."""

    def __init__(self, conn: Connection, stack: contextlib.AsyncExitStack) -> None:
        self.conn = conn
        self.stack = stack
        self.cache: dict[Callable[..., Any], Any] = {}

    async def solve(self, dep: Dependency) -> Any:
        if dep.use_cache and dep.func in self.cache:
            return self.cache[dep.func]
        kwargs = {
            name: self.conn if source == CONNECTION else await self.solve(source)
            for name, source in dep.params
        }
        if dep.kind == "async":
            value = await dep.func(**kwargs)
        elif dep.kind == "sync":
            value = await anyio.to_thread.run_sync(functools.partial(dep.func, **kwargs))
        elif dep.kind == "asyncgen":
            value = await self.stack.enter_async_context(
                contextlib.asynccontextmanager(dep.func)(**kwargs)
            )
        else:
            value = await self.stack.enter_async_context(
                _in_thread(contextlib.contextmanager(dep.func)(**kwargs))
            )
        if dep.use_cache:
            self.cache[dep.func] = value
        return value


@contextlib.asynccontextmanager
async def _in_thread(manager: contextlib.AbstractContextManager[Any]) -> Any:
    """A sync ``yield`` dependency, entered and exited in a worker thread (FastAPI's way)."""
    value = await anyio.to_thread.run_sync(manager.__enter__)
    try:
        yield value
    except BaseException as exc:
        handled = await anyio.to_thread.run_sync(
            manager.__exit__, type(exc), exc, exc.__traceback__
        )
        if not handled:
            raise
    else:
        await anyio.to_thread.run_sync(manager.__exit__, None, None, None)
