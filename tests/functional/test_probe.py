"""The prober against real servers on loopback. All traffic stays inside 127.0.0.0/8 (and ::1).

The servers are raw sockets on threads, so each can misbehave exactly as a test needs: answer, drip,
reset, stay silent. Time bounds are generous on purpose: they tell "bounded by the timeout" from
"hanging", not fast from slow.
"""

from __future__ import annotations

import gc
import socket
import ssl
import struct
import threading
import time
import warnings
from collections.abc import Callable, Iterator

import pytest

from chalicelib.adapters.probe import SocketProber
from chalicelib.core.endpoints import parse_url
from chalicelib.core.model import ProbeResult, ProbeTarget
from chalicelib.core.probe_contract import target_of
from tests.kit.tls import self_signed_context

HOST = "127.0.0.1"
BLACK_HOLE_HOST = "127.0.0.2"  # addresses of their own, so a failure shows which kind it was
SYN_DROP_HOST = "127.0.0.3"
TIMEOUT = 0.3
BOUND = TIMEOUT * 3  # "finished because of the deadline", with room for a loaded machine
LONG_TIMEOUT = 2.0  # for probes that must succeed: no spurious timeouts on a busy CI machine


class Server:
    """Accepts connections on a loopback port and hands each to `handle`."""

    def __init__(
        self,
        handle: Callable[[Server, socket.socket], None],
        *,
        host: str = HOST,
        tls: ssl.SSLContext | None = None,
        threaded: bool = True,
    ) -> None:
        self.host = host
        # One thread per connection lets handlers stall; serving inline on the accept thread is
        # what keeps up with hundreds of connections at once in a process that shares one GIL.
        self._threaded = threaded
        self._handle = handle
        self._tls = tls
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # A deep backlog: the 300-target round connects all at once, and an overflowing accept
        # queue drops SYNs, which would look like black holes.
        self._listener = socket.create_server((host, 0), family=family, backlog=1024)
        self._listener.settimeout(0.05)  # lets the accept loop notice `close()`
        self.port: int = self._listener.getsockname()[1]
        self.requests: list[bytes] = []
        self.notes: list[str] = []  # what a handler observed about the client
        self.connections = 0
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept_loop, daemon=True)
        self._accepter.start()

    def url(self, scheme: str = "http", path: str = "/health") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}" + ("" if scheme == "tcp" else path)

    def _accept_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            if not self._threaded:
                with self._lock:
                    self.connections += 1
                self._serve(conn)
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            # All three together, so that join_handlers never misses a counted connection nor
            # finds a thread that has not started.
            with self._lock:
                self._threads.append(thread)
                self.connections += 1
                thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            if self._tls is not None:
                conn = self._tls.wrap_socket(conn, server_side=True)
            self._handle(self, conn)
        except OSError:
            pass  # the client went away: often exactly what the test provokes
        finally:
            conn.close()

    def read_request(self, conn: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        with self._lock:
            self.requests.append(data)
        return data

    def join_handlers(self, *, connections: int = 0, timeout: float = 5) -> None:
        """Wait until `connections` have been accepted and every handler has finished."""
        deadline = time.monotonic() + timeout
        while self.connections < connections and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        self.stopping.set()
        self._accepter.join(2)
        self._listener.close()
        self.join_handlers(timeout=2)


ServerFactory = Callable[..., Server]


@pytest.fixture
def serve() -> Iterator[ServerFactory]:
    servers: list[Server] = []

    def start(
        handle: Callable[[Server, socket.socket], None],
        *,
        host: str = HOST,
        tls: ssl.SSLContext | None = None,
        threaded: bool = True,
    ) -> Server:
        server = Server(handle, host=host, tls=tls, threaded=threaded)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def respond(
    status: str, *, headers: str = "", body: bytes = b""
) -> Callable[[Server, socket.socket], None]:
    def handle(server: Server, conn: socket.socket) -> None:
        server.read_request(conn)
        head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{headers}Connection: close\r\n\r\n"
        conn.sendall(head.encode() + body)

    return handle


def ssh_banner(server: Server, conn: socket.socket) -> None:
    server.read_request(conn)
    conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")


def plain_http(server: Server, conn: socket.socket) -> None:
    """A plain HTTP server as a TLS client meets it: it cannot parse a ClientHello and says so."""
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A listener that never accepts: the kernel completes the handshake and the request sits unread."""
    listener = socket.create_server((BLACK_HOLE_HOST, 0), backlog=128)
    yield f"{BLACK_HOLE_HOST}:{listener.getsockname()[1]}"
    listener.close()


@pytest.fixture
def closed_port() -> Iterator[str]:
    """A port that is bound but not listening: connecting is refused, and nobody else can take it."""
    sock = socket.socket()
    sock.bind((HOST, 0))
    yield f"{HOST}:{sock.getsockname()[1]}"
    sock.close()


@pytest.fixture
def syn_drop() -> Iterator[str]:
    """A listener whose accept queue is full: Linux drops further SYNs, so connecting never ends."""
    listener = socket.socket()
    listener.bind((SYN_DROP_HOST, 0))
    listener.listen(0)
    address = listener.getsockname()
    fillers = []
    for _ in range(3):  # a backlog of 0 still queues one connection; a few more make sure
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(address)
        fillers.append(filler)
    time.sleep(0.05)
    yield f"{SYN_DROP_HOST}:{address[1]}"
    for filler in fillers:
        filler.close()
    listener.close()


@pytest.fixture(scope="module")
def server_tls(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """A self-signed certificate whose name matches nothing, as on an EC2 address."""
    return self_signed_context(tmp_path_factory.mktemp("tls"))


def target(key: str, url: str) -> ProbeTarget:
    return ProbeTarget(key, parse_url(url))


def probe(url: str, *, timeout: float = TIMEOUT, **options: int) -> tuple[ProbeResult, float]:
    """One target in one round: its result and how long the whole round took."""
    prober = SocketProber(timeout=timeout, **options)
    started = time.monotonic()
    results = prober.probe_round([target("i-0123", url)])
    elapsed = time.monotonic() - started
    assert list(results) == ["i-0123"]
    return results["i-0123"], elapsed


# --- HTTP status ----------------------------------------------------------------------------------


def test_200_is_healthy_and_the_request_is_minimal(serve: ServerFactory) -> None:
    server = serve(respond("200 OK", body=b"fine"))

    result, _ = probe(server.url(path="/health?deep=1"), timeout=LONG_TIMEOUT)

    assert (result.ok, result.detail) == (True, "200")
    assert 0 < result.seconds < LONG_TIMEOUT
    assert server.requests == [
        b"GET /health?deep=1 HTTP/1.1\r\n"
        + f"Host: {HOST}:{server.port}\r\n".encode()
        + b"Connection: close\r\nUser-Agent: lb-failover\r\n\r\n"
    ]


def test_redirect_is_healthy_and_not_followed(serve: ServerFactory) -> None:
    elsewhere = serve(respond("200 OK"))
    server = serve(respond("301 Moved Permanently", headers=f"Location: {elsewhere.url()}\r\n"))

    result, _ = probe(server.url(), timeout=LONG_TIMEOUT)

    assert (result.ok, result.detail) == (True, "301")
    assert len(server.requests) == 1
    assert elsewhere.connections == 0


@pytest.mark.parametrize(
    ("status", "ok"),
    [
        ("204 No Content", True),
        ("302 Found", True),
        ("399 Whatever", True),
        ("404 Not Found", False),
        ("500 Internal Server Error", False),
        ("503 Service Unavailable", False),
        ("101 Switching Protocols", False),
    ],
)
def test_only_2xx_and_3xx_are_healthy(serve: ServerFactory, status: str, ok: bool) -> None:
    server = serve(respond(status))

    result, _ = probe(server.url(), timeout=LONG_TIMEOUT)

    assert (result.ok, result.detail) == (ok, status[:3])


def test_a_status_line_without_reason_phrase_counts(serve: ServerFactory) -> None:
    def bare(server: Server, conn: socket.socket) -> None:
        server.read_request(conn)
        conn.sendall(b"HTTP/1.0 200\n\n")

    result, _ = probe(serve(bare).url(), timeout=LONG_TIMEOUT)

    assert (result.ok, result.detail) == (True, "200")


# --- Connections that fail ------------------------------------------------------------------------


def test_connection_refused(closed_port: str) -> None:
    result, elapsed = probe(f"http://{closed_port}/health")

    assert (result.ok, result.detail) == (False, "connection refused")
    assert elapsed < BOUND


def test_server_that_resets_the_connection(serve: ServerFactory) -> None:
    def reset(server: Server, conn: socket.socket) -> None:
        server.read_request(conn)
        # Linger on with a zero timeout: close() sends RST instead of FIN.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    result, elapsed = probe(serve(reset).url())

    assert (result.ok, result.detail) == (False, "connection reset")
    assert elapsed < BOUND


def test_garbage_instead_of_a_status_line(serve: ServerFactory) -> None:
    result, elapsed = probe(serve(ssh_banner).url())

    assert (result.ok, result.detail) == (False, "bad status line")
    assert elapsed < BOUND


def test_server_that_closes_without_answering(serve: ServerFactory) -> None:
    result, elapsed = probe(serve(Server.read_request).url())

    assert (result.ok, result.detail) == (False, "empty response")
    assert elapsed < BOUND


# --- The deadline ---------------------------------------------------------------------------------


def test_listener_that_accepts_and_never_answers_times_out(black_hole: str) -> None:
    result, elapsed = probe(f"http://{black_hole}/health")

    assert (result.ok, result.detail) == (False, "timeout")
    assert TIMEOUT * 0.9 <= result.seconds < BOUND
    assert elapsed < BOUND


@pytest.mark.parametrize("scheme", ["http", "https", "tcp"])
def test_dropped_syn_times_out(syn_drop: str, scheme: str) -> None:
    result, elapsed = probe(f"{scheme}://{syn_drop}" + ("" if scheme == "tcp" else "/health"))

    assert (result.ok, result.detail) == (False, "timeout")
    assert elapsed < BOUND


def test_slow_drip_cannot_stretch_the_deadline(serve: ServerFactory) -> None:
    # A byte every 50 ms: each read succeeds long before a per-read timeout would fire, which is
    # how such a server keeps a `requests` probe alive for as long as it likes.
    def drip(server: Server, conn: socket.socket) -> None:
        server.read_request(conn)
        for byte in b"HTTP/1.1 200 OK\r\n\r\n":
            if server.stopping.is_set():
                return
            conn.sendall(bytes([byte]))
            time.sleep(0.05)

    result, elapsed = probe(serve(drip).url())

    assert (result.ok, result.detail) == (False, "timeout")
    assert elapsed < BOUND


def test_huge_body_is_healthy_and_not_read(serve: ServerFactory) -> None:
    size = 10 * 1024 * 1024

    def huge(server: Server, conn: socket.socket) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        server.read_request(conn)
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
        sent, chunk = 0, b"x" * 65536
        try:
            while sent < size:
                sent += conn.send(chunk)
        except OSError:
            server.notes.append(f"client closed after {sent} bytes")
            return
        server.notes.append("client read everything")

    server = serve(huge)

    result, elapsed = probe(server.url(), timeout=LONG_TIMEOUT)

    assert (result.ok, result.detail) == (True, "200")
    assert elapsed < LONG_TIMEOUT
    server.join_handlers()
    assert len(server.notes) == 1
    assert server.notes[0].startswith("client closed after")


@pytest.mark.parametrize("max_body", [256, 4096])
def test_endless_status_line_stops_at_max_body(serve: ServerFactory, max_body: int) -> None:
    def endless(server: Server, conn: socket.socket) -> None:
        server.read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK")
        while not server.stopping.is_set():
            conn.sendall(b"K" * 1024)

    result, elapsed = probe(serve(endless).url(), timeout=LONG_TIMEOUT, max_body=max_body)

    assert (result.ok, result.detail) == (False, "bad status line")
    assert elapsed < LONG_TIMEOUT


# --- TLS and TCP ----------------------------------------------------------------------------------


def test_https_with_a_self_signed_certificate_is_healthy(
    serve: ServerFactory, server_tls: ssl.SSLContext
) -> None:
    server = serve(respond("200 OK"), tls=server_tls)

    result, _ = probe(server.url("https"), timeout=LONG_TIMEOUT)

    assert (result.ok, result.detail) == (True, "200")
    assert server.requests[0].startswith(b"GET /health HTTP/1.1\r\n")


def test_https_to_a_plain_http_port_is_a_tls_error(serve: ServerFactory) -> None:
    def silent_close(server: Server, conn: socket.socket) -> None:
        conn.recv(1024)

    for handler in (plain_http, silent_close):
        result, elapsed = probe(serve(handler).url("https"))

        assert (result.ok, result.detail) == (False, "tls error")
        assert elapsed < BOUND


def test_https_to_a_black_hole_times_out(black_hole: str) -> None:
    result, elapsed = probe(f"https://{black_hole}/health")

    assert (result.ok, result.detail) == (False, "timeout")
    assert elapsed < BOUND


def test_tcp_open_port_is_healthy(serve: ServerFactory) -> None:
    server = serve(lambda server, conn: None)

    result, _ = probe(server.url("tcp"), timeout=LONG_TIMEOUT)

    assert (result.ok, result.detail) == (True, "connected")


def test_tcp_closed_port_is_unhealthy(closed_port: str) -> None:
    result, elapsed = probe(f"tcp://{closed_port}")

    assert (result.ok, result.detail) == (False, "connection refused")
    assert elapsed < BOUND


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_ipv6_literal(serve: ServerFactory) -> None:
    server = serve(respond("200 OK"), host="::1")
    prober = SocketProber(timeout=LONG_TIMEOUT)

    results = prober.probe_round([target("http", server.url()), target("tcp", server.url("tcp"))])

    assert {key: (r.ok, r.detail) for key, r in results.items()} == {
        "http": (True, "200"),
        "tcp": (True, "connected"),
    }
    server.join_handlers(connections=2)
    # Two connections: the tcp probe's sends nothing, the http probe's names its host in brackets.
    assert sorted(server.requests) == [
        b"",
        b"GET /health HTTP/1.1\r\n"
        + f"Host: [::1]:{server.port}\r\n".encode()
        + b"Connection: close\r\nUser-Agent: lb-failover\r\n\r\n",
    ]


# --- URLs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://127.0.0.1:21/",
        "127.0.0.1:80",
        "http://localhost:80/health",  # names are refused, so nothing is ever looked up
        "http://127.0.0.1:99999/",
        "http://127.0.0.1:8o/",
        "http://127.0.0.1:0/",
        "tcp://127.0.0.1",
        "tcp://127.0.0.1:80/health",
        "http://user:secret@127.0.0.1:80/",
        "http://127.0.0.1:80/a b",
        "http://127.0.0.1:80/\r\nX-Injected: 1",
        "http://::1:80/",
        "http://[127.0.0.1]:80/",
        "http://",
    ],
)
def test_bad_url(url: str) -> None:
    result = target_of("i-0123", url)

    assert not result.ok
    assert result.detail.startswith("bad url")
    assert result.seconds == 0.0


# --- Rounds ---------------------------------------------------------------------------------------


def test_a_round_with_black_holes_costs_one_timeout(serve: ServerFactory, black_hole: str) -> None:
    # Generous enough that a loaded machine answers every healthy probe in time; serial probing
    # of the 30 black holes would still take 30 timeouts, so the bound below keeps its meaning.
    timeout = 1.5
    server = serve(respond("200 OK"), threaded=False)
    targets = [
        target(f"i-{n:03}", f"http://{black_hole}/health" if n % 10 == 0 else server.url())
        for n in range(300)
    ]
    prober = SocketProber(timeout=timeout)

    started = time.monotonic()
    results = prober.probe_round(targets)
    elapsed = time.monotonic() - started

    assert set(results) == {target.key for target in targets}
    details = [results[target.key].detail for target in targets]
    assert details.count("timeout") == 30
    assert details.count("200") == 270
    assert elapsed < timeout * 3


def test_small_concurrency_still_answers_every_target(
    serve: ServerFactory, black_hole: str
) -> None:
    lock = threading.Lock()
    in_flight = [0]
    peak = [0]

    def slow(server: Server, conn: socket.socket) -> None:
        server.read_request(conn)
        # Counted between request and answer, a window inside the client's own: the count can
        # only undercount the probes in flight, never see one that already let go of its slot.
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.05)
        with lock:
            in_flight[0] -= 1
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    server = serve(slow)
    # Black holes first: they take every slot for a whole timeout, and the healthy targets queued
    # behind them must still get their own full deadline.
    targets = [target(f"hole-{n}", f"http://{black_hole}/") for n in range(4)]
    targets += [target(f"web-{n}", server.url()) for n in range(12)]
    timeout = 0.5
    prober = SocketProber(timeout=timeout, concurrency=4)

    started = time.monotonic()
    results = prober.probe_round(targets)
    elapsed = time.monotonic() - started

    assert {key: r.detail for key, r in results.items()} == {
        **{f"hole-{n}": "timeout" for n in range(4)},
        **{f"web-{n}": "200" for n in range(12)},
    }
    assert 1 <= peak[0] <= 4
    # One timeout for the black holes, then three waves of four: well under two timeouts.
    assert elapsed < 3 * timeout


def test_rounds_run_from_a_thread_without_an_event_loop(serve: ServerFactory) -> None:
    server = serve(respond("200 OK"))
    prober = SocketProber(timeout=LONG_TIMEOUT)
    rounds: list[dict[str, ProbeResult]] = []

    def two_rounds() -> None:
        for _ in range(2):  # a fresh loop each round: the second must not trip over the first
            rounds.append(prober.probe_round([target("i-1", server.url())]))

    worker = threading.Thread(target=two_rounds)
    worker.start()
    worker.join(10)

    assert [r["i-1"].detail for r in rounds] == ["200", "200"]


def test_an_empty_round_is_empty() -> None:
    assert SocketProber(timeout=TIMEOUT).probe_round([]) == {}


def test_no_socket_outlives_its_round(
    serve: ServerFactory, black_hole: str, closed_port: str, server_tls: ssl.SSLContext
) -> None:
    targets = [
        target("ok", serve(respond("200 OK")).url()),
        target("tls", serve(respond("200 OK"), tls=server_tls).url("https")),
        target("tls-error", serve(plain_http).url("https")),
        target("garbage", serve(ssh_banner).url()),
        target("hole", f"http://{black_hole}/"),
        target("tls-hole", f"https://{black_hole}/"),
        target("refused", f"http://{closed_port}/"),
        target("tcp", f"tcp://{black_hole}"),
    ]

    # An unclosed socket or transport warns when it is collected, at the latest in gc.collect().
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        results = SocketProber(timeout=TIMEOUT).probe_round(targets)
        gc.collect()

    assert {key: r.detail for key, r in results.items()} == {
        "ok": "200",
        "tls": "200",
        "tls-error": "tls error",
        "garbage": "bad status line",
        "hole": "timeout",
        "tls-hole": "timeout",
        "refused": "connection refused",
        "tcp": "connected",
    }
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


@pytest.mark.parametrize(
    ("timeout", "concurrency", "max_body"), [(0, 256, 4096), (1, 0, 4096), (1, 256, 10)]
)
def test_nonsense_settings_are_refused(timeout: float, concurrency: int, max_body: int) -> None:
    with pytest.raises(ValueError, match="must"):
        SocketProber(timeout=timeout, concurrency=concurrency, max_body=max_body)


# --- interim (1xx) responses ------------------------------------------------------------------------


def interim_then(final: str, *interim: str) -> Callable[[Server, socket.socket], None]:
    """Interim responses (each with its headers), then the final one, as an HTTP server sends them."""

    def handle(server: Server, conn: socket.socket) -> None:
        server.read_request(conn)
        for status in interim:
            conn.sendall(f"HTTP/1.1 {status}\r\n".encode())
            if status.startswith("103"):
                conn.sendall(b"Link: </style.css>; rel=preload; as=style\r\n")
            conn.sendall(b"\r\n")
        conn.sendall(f"HTTP/1.1 {final}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())

    return handle


@pytest.mark.parametrize(
    ("interim", "final", "ok"),
    [
        (("100 Continue",), "200 OK", True),
        (("103 Early Hints",), "200 OK", True),
        (("100 Continue", "103 Early Hints", "102 Processing"), "204 No Content", True),
        (("103 Early Hints",), "301 Moved Permanently", True),
        (("100 Continue",), "503 Service Unavailable", False),
        (("103 Early Hints", "103 Early Hints"), "503 Service Unavailable", False),
    ],
)
def test_interim_responses_are_skipped_and_the_final_status_counts(
    serve: ServerFactory, interim: tuple[str, ...], final: str, ok: bool
) -> None:
    result, _ = probe(serve(interim_then(final, *interim)).url(), timeout=LONG_TIMEOUT)

    assert (result.ok, result.detail) == (ok, final[:3])


def test_interim_responses_in_one_packet_with_the_final_one(serve: ServerFactory) -> None:
    def one_packet(server: Server, conn: socket.socket) -> None:
        server.read_request(conn)
        conn.sendall(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
            b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n"
        )

    result, _ = probe(serve(one_packet).url(), timeout=LONG_TIMEOUT)

    assert (result.ok, result.detail) == (False, "503")


def test_interim_responses_forever_cannot_stretch_the_deadline(serve: ServerFactory) -> None:
    # A 100 Continue every 50 ms: each one is a complete response, so a client that waited for
    # "the next response" with a per-read timeout would wait as long as the server likes.
    def forever(server: Server, conn: socket.socket) -> None:
        server.read_request(conn)
        while not server.stopping.is_set():
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            time.sleep(0.05)

    result, elapsed = probe(serve(forever).url())

    assert (result.ok, result.detail) == (False, "timeout")
    assert elapsed < BOUND


def test_a_flood_of_interim_responses_stops_at_max_body(serve: ServerFactory) -> None:
    def flood(server: Server, conn: socket.socket) -> None:
        server.read_request(conn)
        while not server.stopping.is_set():
            conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" * 64)

    result, elapsed = probe(serve(flood).url(), timeout=LONG_TIMEOUT, max_body=256)

    assert (result.ok, result.detail) == (False, "bad status line")
    assert elapsed < LONG_TIMEOUT


def test_a_malformed_interim_response_fails_the_probe(serve: ServerFactory) -> None:
    def broken(server: Server, conn: socket.socket) -> None:
        server.read_request(conn)
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\nnot a status line\r\n\r\n")

    result, _ = probe(serve(broken).url(), timeout=LONG_TIMEOUT)

    assert (result.ok, result.detail) == (False, "bad status line")


@pytest.mark.parametrize(("final", "ok"), [("200 OK", True), ("503 Service Unavailable", False)])
def test_interim_responses_over_https_are_skipped_too(
    serve: ServerFactory, server_tls: ssl.SSLContext, final: str, ok: bool
) -> None:
    server = serve(interim_then(final, "100 Continue", "103 Early Hints"), tls=server_tls)

    result, _ = probe(server.url("https"), timeout=LONG_TIMEOUT)

    assert (result.ok, result.detail) == (ok, final[:3])
