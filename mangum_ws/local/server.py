"""Running the emulator: in a background thread for tests, or in the foreground for the CLI."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from ..limits import MAX_MESSAGE_BYTES
from .gateway import LocalApiGatewayApp
from .lambda_runtime import LambdaHandlerFn
from .settings import GatewaySettings


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (0: any free port) and listening; OSError when the port
    is taken or the host is not this machine's. Connections made before the server runs wait
    in the backlog instead of being refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(socket.SOMAXCONN)
    except OSError:
        sock.close()
        raise
    return sock


def _uvicorn_config(app: Any, **extra: Any) -> Any:
    import uvicorn  # the [local] extra

    from .uvicorn_protocol import ApiGatewayWebSocketProtocol

    # As on AWS: messages over 128 KB and frames over 32 KB are closed with 1009 by the
    # WebSocket layer itself, and no compression extension is offered.
    return uvicorn.Config(
        app,
        ws=ApiGatewayWebSocketProtocol,
        ws_max_size=MAX_MESSAGE_BYTES,
        ws_per_message_deflate=False,
        lifespan="off",
        **extra,
    )


def serve(
    app: Any,
    sock: socket.socket,
    *,
    on_ready: Callable[[], None] | None = None,
    log_level: str = "info",
    **config: Any,
) -> None:
    """Serve ``app`` on ``sock`` in the foreground until Ctrl+C; ``on_ready`` runs once the
    server accepts connections (the moment to print its URL)."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started and on_ready is not None:
                on_ready()

    Server(_uvicorn_config(app, log_level=log_level, **config)).run(sockets=[sock])


class LocalApiGateway:
    """An emulated API Gateway WebSocket stage in front of a Lambda handler.

    ``with LocalApiGateway(handler) as gw: ...`` serves ``gw.ws_url`` and the management API at
    ``gw.url`` (give that to ``MangumWS(endpoint_url=...)`` or boto3) on a free 127.0.0.1 port.
    ``sock`` serves on a socket of your own instead of binding ``host:port``.
    """

    def __init__(
        self,
        handler: LambdaHandlerFn,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        settings: GatewaySettings | None = None,
        sock: socket.socket | None = None,
        **options: Any,
    ) -> None:
        self.settings = settings or GatewaySettings(**options)
        self._socket = sock if sock is not None else listening_socket(host, port)
        self.emulator = LocalApiGatewayApp(handler, self.settings)
        self.host = host
        self.port: int = self._socket.getsockname()[1]
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The management API endpoint (``APIGW_MANAGEMENT_URL``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/{self.settings.stage}"

    @property
    def connections(self) -> Any:
        return self.emulator.connections

    def start(self) -> LocalApiGateway:
        import uvicorn

        self._server = uvicorn.Server(_uvicorn_config(self.emulator.app, log_level="warning"))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the local API Gateway did not start")
            time.sleep(0.01)
        if self.emulator.queue_poller is not None:
            self.emulator.queue_poller.start()
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self.emulator.close()
        self._socket.close()

    def serve_forever(
        self, log_level: str = "info", on_ready: Callable[[], None] | None = None
    ) -> None:
        """Serve in the foreground; ``on_ready`` runs once the socket accepts connections."""
        # No access log: one line per @connections POST would drown everything else.
        if self.emulator.queue_poller is not None:
            self.emulator.queue_poller.start()
        try:
            serve(
                self.emulator.app,
                self._socket,
                on_ready=on_ready,
                log_level=log_level,
                access_log=False,
            )
        finally:
            self.emulator.close()
            self._socket.close()

    def __enter__(self) -> LocalApiGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
