"""Run the simulator in a background thread, for tests, benchmarks and the demo.

    with SimulatorServer(SimulatorSettings(orders=500)) as server:
        server.base_url            # http://127.0.0.1:<free port>
        server.simulator           # the state: sellers, tokens, faults, clock...

``async with`` works too; starting and stopping then happen off the event loop.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from keybuzz.simulator.app import create_app
from keybuzz.simulator.settings import SimulatorSettings
from keybuzz.simulator.state import Simulator

STARTUP_TIMEOUT = 10.0
SHUTDOWN_TIMEOUT = 10.0


class QuietH11Protocol(H11Protocol):
    """HTTP without access log lines. uvicorn decides per connection from the process-wide
    ``uvicorn.access`` logger, which a server in the same process (the demo's service)
    configures: Amazon's side of the conversation would then fill the service's console."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.access_log = False


class SimulatorServer:
    def __init__(self, settings: SimulatorSettings | None = None) -> None:
        self.settings = settings or SimulatorSettings()
        self.simulator = Simulator(self.settings)
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    @property
    def port(self) -> int:
        if self._socket is None:
            raise RuntimeError("the simulator is not running")
        return int(self._socket.getsockname()[1])

    def start(self) -> Self:
        # IPPROTO_TCP (not 0) lets asyncio set TCP_NODELAY on accepted connections.
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.settings.host, self.settings.port))
        except OSError:
            listener.close()
            raise
        self._socket = listener
        self.base_url = f"http://{self.settings.host}:{self.port}"
        try:
            self._serve_in_thread(listener)
        except BaseException:
            self.stop()
            raise
        self._wait_started()
        return self

    def _serve_in_thread(self, listener: socket.socket) -> None:
        config = uvicorn.Config(
            create_app(self.settings, self.simulator),
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            http=QuietH11Protocol,
            loop="asyncio",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [listener]},
            name=f"sp-api-simulator-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def _wait_started(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not (self._server and self._server.started):
            if self._thread is None or not self._thread.is_alive():
                self.stop()
                raise RuntimeError("the simulator failed to start")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("the simulator did not start in time")
            time.sleep(0.005)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(SHUTDOWN_TIMEOUT)
        if self._socket is not None:
            self._socket.close()
        self._server, self._thread, self._socket = None, None, None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)
