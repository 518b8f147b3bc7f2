"""Probe load balancers and web servers over HTTP(S) or TCP, every target of a round at once.

Why asyncio and not `requests`: a `requests` timeout bounds each socket operation, not the probe, so
a server that drips one byte every 100 ms keeps a probe alive indefinitely. Here one deadline
(`asyncio.timeout`) covers connect, TLS, request and the final status line together (interim 1xx
responses are skipped inside it), and the probes of a round run concurrently, so black-holed
targets cost about one timeout per round rather than one each.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from chalicelib.core.addresses import DEFAULT_PORTS
from chalicelib.core.model import ProbeResult, ProbeTarget

# "HTTP/1.1 200 OK": a version, a status code and a reason phrase that may be empty or missing.
_STATUS_LINE = re.compile(rb"HTTP/\d\.\d ([1-5]\d\d)(?: [^\r\n]*)?\r?")
# A probe URL is a template filled with an EC2 address: printable ASCII only. Anything else is a
# broken template, and a space or CR/LF would otherwise end up inside the request line or headers.
_URL_CHARACTERS = re.compile(r"[!-~]+")


class _ProbeFailed(Exception):
    """A failure whose detail is already decided (bad URL, TLS, a response that is not HTTP)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class _Endpoint:
    scheme: str  # http, https or tcp
    family: socket.AddressFamily
    host: str  # an IP address, without brackets
    port: int
    request: bytes  # empty for tcp


def _parse(url: str) -> _Endpoint:
    def bad(reason: str) -> _ProbeFailed:
        return _ProbeFailed(f"bad url: {reason}")

    if not _URL_CHARACTERS.fullmatch(url):
        raise bad("empty, or not printable ASCII")
    try:
        parts = urlsplit(url)
        port = parts.port  # a property that raises ValueError for a port out of range
    except ValueError as exc:
        raise bad(str(exc)) from exc
    if parts.scheme not in ("http", "https", "tcp"):
        raise bad("scheme must be http, https or tcp")
    if "@" in parts.netloc:
        raise bad("credentials are not allowed")
    if not parts.hostname:
        raise bad("no host")
    # Only IP literals: every probed address comes from EC2, and a name would need getaddrinfo, which
    # asyncio runs in a thread that the deadline cannot cancel (asyncio.run then waits for it).
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError as exc:
        raise bad("host must be an IP address") from exc
    if address.version == 4 and parts.netloc.startswith("["):
        raise bad("brackets are for IPv6 addresses")
    if port is None:
        if parts.scheme == "tcp":
            raise bad("tcp needs a port")
        port = DEFAULT_PORTS[parts.scheme]
    if port == 0:
        raise bad("port 0")
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    if parts.scheme == "tcp":
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise bad("tcp takes no path")
        return _Endpoint("tcp", family, str(address), port, b"")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = (
        f"GET {target} HTTP/1.1\r\n"
        f"Host: {parts.netloc}\r\n"
        "Connection: close\r\n"
        "User-Agent: lb-failover\r\n"
        "\r\n"
    ).encode("ascii")
    return _Endpoint(parts.scheme, family, str(address), port, request)


def _status_code(line: bytes) -> int:
    match = _STATUS_LINE.fullmatch(line)
    if match is None:
        raise _ProbeFailed("bad status line")
    return int(match[1])


class _StatusLineReader(asyncio.BufferedProtocol):
    """Receives into one buffer of `max_bytes` and stops reading once the final status line is in.

    Receiving straight into a fixed buffer is what bounds the read: the socket is never asked for
    more than the room left, so a 10 MB body or endless headers cost at most `max_bytes`. Interim
    responses (1xx: 100 Continue, 103 Early Hints) come before the final one and are skipped, as
    HTTP clients do; they share the same buffer, so a flood of them is bounded too, and the probe's
    one deadline bounds a server that sends them slowly forever.
    """

    def __init__(self, max_bytes: int) -> None:
        self.status_line: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        # After a timeout nobody awaits the answer any more; a connection lost later must not
        # be logged as "Future exception was never retrieved".
        self.status_line.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._transport: asyncio.BaseTransport | None = None
        self._buffer = bytearray(max_bytes)
        self._filled = 0
        # Where the next unread line starts, and whether it is an interim response's header line.
        self._line_start = 0
        self._in_interim_headers = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return memoryview(self._buffer)[self._filled :]

    def buffer_updated(self, nbytes: int) -> None:
        self._filled += nbytes
        while not self.status_line.done():
            end = self._buffer.find(b"\n", self._line_start, self._filled)
            if end < 0:
                if self._filled == len(self._buffer):
                    self._finish(_ProbeFailed("bad status line"))
                return
            line = bytes(self._buffer[self._line_start : end])
            self._line_start = end + 1
            if self._in_interim_headers:
                # An empty line ends the interim response; the next line is a status line again.
                self._in_interim_headers = line not in (b"", b"\r")
                continue
            try:
                status = _status_code(line)
            except _ProbeFailed as exc:
                self._finish(exc)
                return
            # 101 Switching Protocols ends the HTTP exchange: it is final (and not healthy).
            if 100 <= status < 200 and status != 101:
                self._in_interim_headers = True
                continue
            self._finish(line)

    def eof_received(self) -> bool:
        self._finish(_ProbeFailed("bad status line" if self._filled else "empty response"))
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(exc if exc is not None else ConnectionResetError())

    def _finish(self, outcome: bytes | BaseException) -> None:
        if self.status_line.done():
            return
        if isinstance(outcome, bytes):
            self.status_line.set_result(outcome)
        else:
            self.status_line.set_exception(outcome)
        # Stop receiving: the answer is decided, and a full buffer has no room for more anyway.
        if isinstance(self._transport, asyncio.ReadTransport) and self._transport.is_reading():
            self._transport.pause_reading()


class Prober:
    """Probes targets in rounds; each round runs on a fresh event loop of its own."""

    def __init__(self, *, timeout: float, concurrency: int = 256, max_body: int = 4096) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        # A Lambda execution environment has at most 1,024 file descriptors: each probe in flight
        # holds one socket, so the number of probes in flight is bounded well below that.
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if max_body < 64:
            raise ValueError("max_body must leave room for a status line")
        self._timeout = timeout
        self._concurrency = concurrency
        self._max_body = max_body
        # EC2 addresses have no certificates with matching names: TLS only has to work, not verify.
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self._tls.check_hostname = False
        self._tls.verify_mode = ssl.CERT_NONE

    def probe_round(self, targets: Sequence[ProbeTarget]) -> dict[str, ProbeResult]:
        """Probe every target concurrently; every target's key gets a result.

        Call it from synchronous code, on any thread: it runs a loop of its own with asyncio.run, so
        nothing from one round (a stuck socket, a task) outlives it. Inside a running event loop
        asyncio.run refuses (RuntimeError); nothing in this project probes from async code.
        """
        if not targets:
            return {}
        return asyncio.run(self._round(targets))

    async def _round(self, targets: Sequence[ProbeTarget]) -> dict[str, ProbeResult]:
        # Black-holed targets hold their slot for a whole timeout, so a round lasts about one
        # timeout per `concurrency` of them: one timeout in practice, with the default of 256.
        slots = asyncio.Semaphore(self._concurrency)
        results = await asyncio.gather(*(self._probe(target, slots) for target in targets))
        return {target.key: result for target, result in zip(targets, results, strict=True)}

    async def _probe(self, target: ProbeTarget, slots: asyncio.Semaphore) -> ProbeResult:
        try:
            endpoint = _parse(target.url)
        except _ProbeFailed as exc:
            return ProbeResult(ok=False, detail=exc.detail, seconds=0.0)
        async with slots:
            # The deadline starts once a slot is free: waiting behind other probes is not the
            # target's fault, so it must not time the target out.
            started = time.monotonic()
            ok, detail = await self._attempt(endpoint)
            return ProbeResult(ok=ok, detail=detail, seconds=time.monotonic() - started)

    async def _attempt(self, endpoint: _Endpoint) -> tuple[bool, str]:
        try:
            async with asyncio.timeout(self._timeout):
                status = await self._exchange(endpoint)
        # TimeoutError first: it is an OSError too.
        except TimeoutError:
            return False, "timeout"
        except _ProbeFailed as exc:
            return False, exc.detail
        except ConnectionRefusedError:
            return False, "connection refused"
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            return False, "connection reset"
        except OSError as exc:  # unreachable network, too many open files, ...
            return False, (exc.strerror or type(exc).__name__).lower()
        if status is None:
            return True, "connected"
        return 200 <= status < 400, str(status)

    async def _exchange(self, endpoint: _Endpoint) -> int | None:
        """Connect, then for HTTP(S) send the request and return the status code."""
        loop = asyncio.get_running_loop()
        sock = socket.socket(endpoint.family, socket.SOCK_STREAM)
        transport: asyncio.Transport | None = None
        try:
            sock.setblocking(False)
            # Connecting first, on our own socket, keeps a refused or reset TCP connection apart
            # from a failed TLS handshake.
            await loop.sock_connect(sock, (endpoint.host, endpoint.port))
            if endpoint.scheme == "tcp":
                return None
            reader = _StatusLineReader(self._max_body)
            tls = endpoint.scheme == "https"
            try:
                transport, _ = await loop.create_connection(
                    lambda: reader,
                    sock=sock,
                    ssl=self._tls if tls else None,
                    server_hostname=endpoint.host if tls else None,
                )
            except OSError as exc:  # ssl.SSLError is an OSError, as is a reset mid-handshake
                if tls:
                    raise _ProbeFailed("tls error") from exc
                raise
            transport.write(endpoint.request)
            return _status_code(await reader.status_line)
        finally:
            # abort(), not close(): no TLS close_notify or flush to wait for, the socket goes now,
            # on success, error, timeout or cancellation alike.
            if transport is not None:
                transport.abort()
            else:
                sock.close()
