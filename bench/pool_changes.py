"""Failed requests while the web pool changes: Runtime API changes against reloads.

One real HAProxy (the project's haproxy.cfg) on 127.0.8.11 in front of real HTTP servers on
127.0.8.21; the real infra/lb/apply-backends.sh applies the lists. A rolling change, 50 times:
start a new web server, push the pool with it in and the oldest one out, wait until the leaving
server has no request in flight (it drained), stop it. Meanwhile keep-alive clients (one
connection, reused) and new-connection clients (one connection per request) send GETs through the
LB, none retried: a failed request is a request an application would have seen fail. The same
run is done three times: with the apply script's default (Runtime API, no reload); with
LBSIDE_APPLY_METHOD=reload (every change a graceful reload, the fallback when slots run out); and
with reloads on haproxy.cfg without `option idle-close-on-response` (how every change was applied
before the Runtime API).

tests/e2e/test_lb_side.py runs `rolling_changes` with the Runtime API and asserts zero failures.
"""

from __future__ import annotations

import hashlib
import http.client
import socket
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.report import Figure, Progress, Section
from standin.haproxy import HAPROXY_CONFIG, LocalHaproxy
from standin.web import LocalWebServer

LB_ADDRESS = "127.0.8.11"
WEB_ADDRESS = "127.0.8.21"
CHANGES = 50
POOL = 3


def web_server(address: str) -> LocalWebServer:
    """Answers `GET /` with its `address:port`; counts the requests it is answering."""
    return LocalWebServer(address, body="{entry}", health_page=True, keep_alive=True).start()


@dataclass
class Tally:
    """Requests per client kind: answered correctly, and what went wrong with the others."""

    ok: Counter[str] = field(default_factory=Counter)
    failures: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, problem: str | None) -> None:
        with self.lock:
            if problem is None:
                self.ok[kind] += 1
            else:
                self.failures.setdefault(kind, []).append(problem)

    def failed(self, kind: str) -> int:
        return len(self.failures.get(kind, []))

    def total(self, kind: str) -> int:
        return self.ok[kind] + self.failed(kind)


@dataclass
class Outcome:
    method: str
    changes: int
    tally: Tally
    apply_seconds: list[float]
    reloads: int  # applies whose output says HAProxy reloaded
    failed_applies: list[str]
    undrained: int  # leaving servers still answering a request when the bound ran out
    served_at_end: set[str] = field(
        default_factory=set
    )  # HAProxy's own state after the last change
    pool_at_end: set[str] = field(default_factory=set)  # the last list pushed


def _get(connection: http.client.HTTPConnection, known: set[str]) -> str | None:
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        body = response.read().decode()
    except (OSError, http.client.HTTPException) as exc:
        return f"{type(exc).__name__}: {exc}"
    if response.status != 200:
        return f"HTTP {response.status}"
    return None if body in known else f"unknown body {body!r}"


def _client(
    lb: LocalHaproxy, kind: str, known: set[str], stop: threading.Event, tally: Tally
) -> None:
    connection = http.client.HTTPConnection(lb.bind_address, lb.port, timeout=15)
    try:
        while not stop.is_set():
            problem = _get(connection, known)
            tally.record(kind, problem)
            if kind == "new connection" or problem is not None:
                connection.close()  # the next request() opens a new connection
    finally:
        connection.close()


def backend_list(servers: list[LocalWebServer]) -> tuple[str, str]:
    text = " ".join(sorted(s.entry for s in servers))
    return text, hashlib.sha256(text.encode()).hexdigest()


def rolling_changes(
    lb: LocalHaproxy,
    web_address: str,
    *,
    method: str = "runtime",
    changes: int = CHANGES,
    keep_alive_clients: int = 4,
    new_connection_clients: int = 4,
    gap: float = 0.1,
    progress: Callable[[str], None] = lambda _: None,
) -> Outcome:
    """`changes` rolling pool changes on a started `lb` under client load (see the module)."""
    pool = [web_server(web_address) for _ in range(POOL)]
    known = {s.entry for s in pool}
    first = lb.apply(*backend_list(pool))
    if first.returncode != 0:
        raise RuntimeError(f"the first list was not applied: {first.stdout}{first.stderr}")
    _wait_serving(lb, {s.entry for s in pool})
    tally, stop = Tally(), threading.Event()
    kinds = ["keep-alive"] * keep_alive_clients + ["new connection"] * new_connection_clients
    clients = [
        threading.Thread(target=_client, args=(lb, kind, known, stop, tally), daemon=True)
        for kind in kinds
    ]
    outcome = Outcome(method, changes, tally, [], 0, [], 0)
    for client in clients:
        client.start()
    try:
        time.sleep(0.5)
        for i in range(changes):
            new = web_server(web_address)
            known.add(new.entry)
            leaving, pool = pool[0], [*pool[1:], new]
            started = time.monotonic()
            result = lb.apply(*backend_list(pool), extra_env={"LBSIDE_APPLY_METHOD": method})
            outcome.apply_seconds.append(time.monotonic() - started)
            if result.returncode != 0:
                outcome.failed_applies.append(result.stdout + result.stderr)
            outcome.reloads += "HAProxy reloaded" in result.stdout
            outcome.undrained += not leaving.drain_and_stop()
            if (i + 1) % 10 == 0:
                progress(f"{method}: {i + 1} of {changes} changes")
            time.sleep(gap)
        time.sleep(0.5)
        outcome.served_at_end = lb.serving()
        outcome.pool_at_end = {s.entry for s in pool}
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=30)
        for server in pool:
            server.stop()
    return outcome


def _wait_serving(lb: LocalHaproxy, expected: set[str], *, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while lb.serving() != expected:
        if time.monotonic() > deadline:
            raise RuntimeError(f"HAProxy serves {lb.serving()}, not {expected}")
        time.sleep(0.05)


def _free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


# name -> (LBSIDE_APPLY_METHOD, whether haproxy.cfg keeps `option idle-close-on-response`)
RUNS = {
    "Runtime API": ("runtime", True),
    "reloads": ("reload", True),
    "reloads, without idle-close-on-response": ("reload", False),
}


def _measure(method: str, idle_close: bool, changes: int, progress: Progress) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="lbf-bench-pool-") as workdir:
        config = HAPROXY_CONFIG
        if not idle_close:
            config = Path(workdir) / "haproxy-without-idle-close.cfg"
            text = HAPROXY_CONFIG.read_text()
            config.write_text(text.replace("    option idle-close-on-response\n", ""))
            assert config.read_text() != text, "haproxy.cfg has no option idle-close-on-response"
        lb = LocalHaproxy(Path(workdir) / "lb", LB_ADDRESS, _free_port(LB_ADDRESS), config=config)
        with lb:
            return rolling_changes(
                lb, WEB_ADDRESS, method=method, changes=changes, progress=progress
            )


def _failed(outcome: Outcome, kind: str) -> str:
    total, failed = outcome.tally.total(kind), outcome.tally.failed(kind)
    per_1000 = 1000 * failed / total if total else 0.0
    return f"{failed} of {total:,} ({per_1000:.1f} per 1,000)"


def run(progress: Progress, *, quick: bool = False) -> Section:
    changes = 10 if quick else CHANGES
    outcomes = {}
    for name, (method, idle_close) in RUNS.items():
        progress(f"pool-changes: {changes} rolling changes, {name}")
        outcomes[name] = _measure(method, idle_close, changes, progress)
    runtime, reload, before = outcomes.values()
    section = Section(name="pool-changes", title="Pool changes under load")
    for kind in ("keep-alive", "new connection"):
        section.figures.append(
            Figure(
                f"{kind} clients: failed requests, Runtime API / reloads / reloads as before",
                f"{_failed(runtime, kind)} / {_failed(reload, kind)} / {_failed(before, kind)}",
                target="0 with the Runtime API",
                met=runtime.tally.failed(kind) == 0,
                note="no retry by the client: each failure is one an application would see; "
                "as before = reloads without option idle-close-on-response",
            )
        )
    median_runtime = statistics.median(runtime.apply_seconds)
    median_reload = statistics.median(reload.apply_seconds)
    section.figures.append(
        Figure(
            "one pool change: apply time, Runtime API vs reload (median)",
            f"{median_runtime * 1000:.0f} ms vs {median_reload * 1000:.0f} ms "
            f"= 1 : {median_reload / median_runtime:.1f}",
            note="script start to HAProxy serving the list, read back from its admin socket",
        )
    )
    section.figures.append(
        Figure(
            "reloads during the Runtime API run",
            f"{runtime.reloads} of {changes} changes",
            target="0",
            met=runtime.reloads == 0,
        )
    )
    section.details.append(
        f"One real HAProxy (the project's haproxy.cfg) on {LB_ADDRESS}, real HTTP servers on "
        f"{WEB_ADDRESS}, the real apply-backends.sh. {changes} rolling changes, 0.1 s apart: a new "
        f"web server starts, the pool of {POOL} is pushed with it in and the oldest out, the "
        "leaving server stops once it has no request in flight. 4 keep-alive and 4 "
        "new-connection clients send GETs through the LB meanwhile, never retried. Runtime API: "
        "the script's default (free slots filled, leaving servers put in maintenance, no "
        "reload). Reloads: LBSIDE_APPLY_METHOD=reload, the same file, then a graceful reload. "
        "Reloads as before: the same, on haproxy.cfg less `option idle-close-on-response`."
    )
    rows = [f"| | {' | '.join(outcomes)} |", "|---|---|---|---|"]
    for kind in ("keep-alive", "new connection"):
        rows.append(
            f"| {kind}: failed | {' | '.join(_failed(o, kind) for o in outcomes.values())} |"
        )
    rows.append(
        "| applies that failed | "
        + " | ".join(str(len(o.failed_applies)) for o in outcomes.values())
        + " |"
    )
    rows.append(
        "| leaving servers not drained in 10 s | "
        + " | ".join(str(o.undrained) for o in outcomes.values())
        + " |"
    )
    section.details.append("\n".join(rows))
    for name, outcome in outcomes.items():
        kinds_of_failure = Counter(
            problem.split(":")[0]
            for problems in outcome.tally.failures.values()
            for problem in problems
        )
        if kinds_of_failure:
            section.details.append(
                f"Failures, {name}: "
                + ", ".join(f"{what} x {n}" for what, n in kinds_of_failure.most_common())
            )
    section.data = {
        name: {
            "changes": o.changes,
            "requests": dict(o.tally.ok),
            "failed": {k: len(v) for k, v in o.tally.failures.items()},
            "apply_seconds_median": statistics.median(o.apply_seconds),
            "reloads": o.reloads,
            "failed_applies": len(o.failed_applies),
            "undrained": o.undrained,
        }
        for name, o in outcomes.items()
    }
    return section
