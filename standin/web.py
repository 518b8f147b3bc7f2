"""Real HTTP servers on loopback addresses, standing in for web servers (or LBs in tests).

One server for the demo, the benchmarks and the tests, with the switches they need:
- `port=0` binds any free port; `port` and `entry` ("address:port") say which once started;
- `body` is what every answer carries, with `{entry}` replaced by the bound address and port
  (a web server that answers with its entry shows which server an LB sent a request to);
- `health_page=True` answers `GET /health` with 200 "ok", or 503 "down" while `healthy` is False,
  as HAProxy's checks expect of a web server;
- `keep_alive=True` keeps connections open (HTTP/1.1), as HAProxy talks to real web servers;
- `drain_and_stop()` stops once no request is in flight, as a web server leaving a pool does.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        server = self.server
        with server.lock:
            server.in_flight += 1
        try:
            if self.path == "/health" and server.health_page:
                status, body = (200, b"ok\n") if server.healthy else (503, b"down\n")
            else:
                status, body = 200, server.body
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        finally:
            with server.lock:
                server.in_flight -= 1

    def log_message(self, format: str, *args: object) -> None:
        return  # keep test and demo output readable


class _KeepAliveHandler(_Handler):
    protocol_version = "HTTP/1.1"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Python's default accept backlog is 5; real web servers use hundreds (nginx 511). At 5, a
    # burst of connections overflows the queue, the kernel drops SYNs, and what is measured is
    # the toy server, not the LB in front of it.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], *, keep_alive: bool) -> None:
        super().__init__(address, _KeepAliveHandler if keep_alive else _Handler)
        self.body = b""
        self.health_page = False
        self.healthy = True
        self.lock = threading.Lock()
        self.in_flight = 0

    def handle_error(self, request: object, client_address: object) -> None:
        # A client (a probe at its deadline, HAProxy on a check or a reload) hanging up
        # mid-answer is normal.
        return


def loopback(address: str) -> str:
    """The stand-in binds loopback addresses only: never one of a real network."""
    if not address.startswith("127."):
        raise ValueError(f"the stand-in only binds loopback addresses, not {address}")
    return address


class LocalWebServer:
    """Answers every GET with 200 and its `body` (see the module for the switches); stopping it
    is how it fails."""

    def __init__(
        self,
        address: str,
        port: int = 0,
        *,
        body: str = "web {entry}\n",
        health_page: bool = False,
        keep_alive: bool = False,
    ) -> None:
        self.address = loopback(address)
        self.port = port
        self.body = body
        self.health_page = health_page
        self.keep_alive = keep_alive
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def entry(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def healthy(self) -> bool:
        return self._server is None or self._server.healthy

    @healthy.setter
    def healthy(self, value: bool) -> None:
        assert self._server is not None, "start the server first"
        self._server.healthy = value

    def start(self) -> LocalWebServer:
        server = _Server((self.address, self.port), keep_alive=self.keep_alive)
        self.port = server.server_address[1]
        server.body = self.body.format(entry=self.entry).encode()
        server.health_page = self.health_page
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def drain_and_stop(self, *, timeout: float = 10.0) -> bool:
        """Stop once no request is in flight (bounded); True if it drained in time."""
        server = self._server
        drained = server is None
        deadline = time.monotonic() + timeout
        while server is not None and time.monotonic() < deadline:
            with server.lock:
                if server.in_flight == 0:
                    drained = True
                    break
            time.sleep(0.01)
        self.stop()
        return drained
