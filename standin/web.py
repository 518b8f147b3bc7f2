"""Real HTTP servers on loopback addresses, standing in for web servers (or LBs in tests)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        status, body = 200, f"{self.server.label}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return  # keep test and demo output readable


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    label = ""

    def handle_error(self, request: object, client_address: object) -> None:
        # A client (a probe at its deadline, HAProxy on reload) hanging up mid-answer is normal.
        return


class LocalWebServer:
    """Answers every GET (`/`, `/health`) with 200 and its label; stopping it is how it fails."""

    def __init__(self, address: str, port: int, label: str | None = None) -> None:
        if not address.startswith("127."):
            raise ValueError(f"the stand-in only binds loopback addresses, not {address}")
        self.address = address
        self.port = port
        self.label = label or f"web {address}:{port}"
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> LocalWebServer:
        server = _Server((self.address, self.port), _Handler)
        server.label = self.label
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
