"""Route 53's data plane stand-in: real DNS queries to it, real HTTP/TCP endpoints for its checkers.

moto's server holds the zone and the health checks; the checkers are ticked with explicit times
(each tick is one RequestInterval) so that threshold counts are exact, except in the one test that
runs them on the real clock with a small time factor.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from chalicelib.adapters.route53_health_checks import Route53HealthChecks
from standin import route53_dns
from standin.aws import LocalAws, local_aws
from standin.route53_checkers import (
    CHECKER_REGIONS,
    CheckConfig,
    CheckJudgement,
    Observation,
    Route53Checkers,
    probe,
    route53_status_from,
)
from standin.route53_dns import (
    CachingResolver,
    RecordSet,
    ResolveError,
    Route53DataPlane,
    local_route53,
    route,
    without_conflicts,
)
from standin.web import LocalWebServer
from tests.kit.tls import self_signed_context

DOMAIN = "dataplane.example.com"
PRIMARY_ADDRESS = "127.0.4.11"
SECONDARY_ADDRESS = "127.0.4.12"


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with local_aws(DOMAIN, ec2=False) as aws:
        yield aws


@pytest.fixture
def route53(aws: LocalAws) -> Any:
    return aws.client("route53")


@pytest.fixture
def checkers(route53: Any) -> Iterator[Route53Checkers]:
    made = Route53Checkers(route53)
    yield made
    made.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def plane(aws: LocalAws, checkers: Route53Checkers, clock: Clock) -> Iterator[Route53DataPlane]:
    made = Route53DataPlane(aws.client("route53"), aws.zone_id, checkers, clock=clock).start(
        poll_interval=3600  # the tests refresh it themselves
    )
    yield made
    made.stop()


def test_a_port_taken_for_udp_is_left_for_another(
    aws: LocalAws, checkers: Route53Checkers, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The port the kernel finds free for TCP may be taken for UDP on a busy machine (seen in
    CI): the data plane looks for another one instead of failing to start."""
    real = route53_dns.DNSServer
    refused: list[int] = []

    def first_udp_port_taken(*args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("tcp") and not refused:
            refused.append(kwargs["port"])
            raise OSError(98, "Address already in use")
        return real(*args, **kwargs)

    monkeypatch.setattr(route53_dns, "DNSServer", first_udp_port_taken)
    plane = Route53DataPlane(aws.client("route53"), aws.zone_id, checkers, clock=clock)
    started = plane.start(poll_interval=3600)
    try:
        assert refused
        assert started.port not in (0, refused[0])
        for tcp in (False, True):  # both protocols on the port it found
            reply = ask(started, f"absent.{DOMAIN}", tcp=tcp)
            assert RCODE[reply.header.rcode] == "NXDOMAIN"
    finally:
        started.stop()


def change(aws: LocalAws, *changes: tuple[str, dict[str, Any]]) -> None:
    aws.client("route53").change_resource_record_sets(
        HostedZoneId=aws.zone_id,
        ChangeBatch={"Changes": [{"Action": a, "ResourceRecordSet": r} for a, r in changes]},
    )


def a_record(name: str, *values: str, ttl: int = 60, **extra: Any) -> dict[str, Any]:
    return {
        "Name": name,
        "Type": "A",
        "TTL": ttl,
        "ResourceRecords": [{"Value": v} for v in values],
        **extra,
    }


def http_check(route53: Any, address: str, port: int, *, threshold: int = 3) -> str:
    response = route53.create_health_check(
        CallerReference=f"{address}:{port}:{time.monotonic()}",
        HealthCheckConfig={
            "Type": "HTTP",
            "IPAddress": address,
            "Port": port,
            "ResourcePath": "/health",
            "RequestInterval": 10,
            "FailureThreshold": threshold,
        },
    )
    return str(response["HealthCheck"]["Id"])


def ask(plane: Route53DataPlane, name: str, kind: str = "A", *, tcp: bool = False) -> DNSRecord:
    raw = DNSRecord.question(name, kind).send(plane.address, plane.port, tcp=tcp, timeout=2)
    return DNSRecord.parse(raw)


def answered(plane: Route53DataPlane, name: str) -> tuple[str, ...]:
    return tuple(str(rr.rdata) for rr in ask(plane, name).rr)


def test_plain_records_are_answered_over_udp_and_tcp_with_their_ttl(
    aws: LocalAws, plane: Route53DataPlane
) -> None:
    change(
        aws,
        ("CREATE", a_record(f"www.{DOMAIN}", "127.0.4.1", "127.0.4.2", ttl=42)),
        (
            "CREATE",
            {
                "Name": f"txt.{DOMAIN}",
                "Type": "TXT",
                "TTL": 300,
                "ResourceRecords": [{"Value": '"owner=lb failover"'}],
            },
        ),
    )
    plane.refresh()
    for tcp in (False, True):
        reply = ask(plane, f"WWW.{DOMAIN}.", tcp=tcp)  # names are case-insensitive
        assert RCODE[reply.header.rcode] == "NOERROR"
        assert reply.header.aa == 1
        assert sorted(str(rr.rdata) for rr in reply.rr) == ["127.0.4.1", "127.0.4.2"]
        assert {rr.ttl for rr in reply.rr} == {42}
    txt = ask(plane, f"txt.{DOMAIN}", "TXT")
    assert [(QTYPE[rr.rtype], str(rr.rdata), rr.ttl) for rr in txt.rr] == [
        ("TXT", '"owner=lb failover"', 300)
    ]
    # The name exists, with no TXT record: no error, no answer.
    nodata = ask(plane, f"www.{DOMAIN}", "TXT")
    assert (RCODE[nodata.header.rcode], nodata.rr) == ("NOERROR", [])


def test_absent_names_are_nxdomain_and_other_zones_refused(plane: Route53DataPlane) -> None:
    absent = ask(plane, f"nothing-here.{DOMAIN}")
    assert RCODE[absent.header.rcode] == "NXDOMAIN"
    assert absent.rr == []
    # The zone's SOA rides along, for a resolver's negative caching.
    assert [QTYPE[rr.rtype] for rr in absent.auth] == ["SOA"]
    outside = ask(plane, "www.example.org")
    assert RCODE[outside.header.rcode] == "REFUSED"
    # A name that merely ends like the zone is outside it.
    assert RCODE[ask(plane, f"x{DOMAIN}").header.rcode] == "REFUSED"


def test_a_client_keeps_an_answer_for_its_ttl(aws: LocalAws, plane: Route53DataPlane) -> None:
    name = f"cached.{DOMAIN}"
    change(aws, ("CREATE", a_record(name, "127.0.4.1", ttl=30)))
    plane.refresh()
    client_clock = Clock(0.0)
    client = CachingResolver(plane.address, plane.port, clock=client_clock)
    assert client.resolve(name) == ("127.0.4.1",)
    change(
        aws,
        ("DELETE", a_record(name, "127.0.4.1", ttl=30)),
        ("CREATE", a_record(name, "127.0.4.2", ttl=30)),
    )
    plane.refresh()
    assert answered(plane, name) == ("127.0.4.2",)  # the server has it at once
    client_clock.now = 29.9
    assert client.resolve(name) == ("127.0.4.1",)  # the client, not before its TTL ran out
    assert client.queries == 1
    client_clock.now = 30.0
    assert client.resolve(name) == ("127.0.4.2",)
    assert client.queries == 2


def test_a_change_is_answered_only_after_the_propagation_delay(
    aws: LocalAws, checkers: Route53Checkers, clock: Clock
) -> None:
    name = f"propagated.{DOMAIN}"
    change(aws, ("CREATE", a_record(name, "127.0.4.1")))
    plane = Route53DataPlane(
        aws.client("route53"), aws.zone_id, checkers, propagation_seconds=45, clock=clock
    ).start(poll_interval=3600)
    try:
        # What moto held at the start counts as propagated already.
        assert answered(plane, name) == ("127.0.4.1",)
        change(
            aws,
            ("DELETE", a_record(name, "127.0.4.1")),
            ("CREATE", a_record(name, "127.0.4.2")),
        )
        assert plane.refresh(now=clock.now) is True
        assert plane.refresh(now=clock.now + 10) is False  # seen once, stamped when first seen
        clock.now += 44.9
        assert answered(plane, name) == ("127.0.4.1",)
        clock.now += 0.1
        assert answered(plane, name) == ("127.0.4.2",)
    finally:
        plane.stop()


@pytest.fixture
def pair(
    aws: LocalAws, route53: Any, servers: dict[str, LocalWebServer]
) -> Iterator[tuple[str, dict[str, str]]]:
    """A failover pair whose two checks watch real HTTP servers: (name, check id by role).
    Its checks and records go at the end, so that each test counts only its own."""
    name = f"pair.{DOMAIN}"
    ids = {}
    records = []
    for role, address in (("PRIMARY", PRIMARY_ADDRESS), ("SECONDARY", SECONDARY_ADDRESS)):
        server = LocalWebServer(address, health_page=True).start()
        servers[role] = server
        ids[role] = http_check(route53, address, server.port)
        records.append(
            a_record(
                name, address, SetIdentifier=role.lower(), Failover=role, HealthCheckId=ids[role]
            )
        )
    change(aws, *(("CREATE", record) for record in records))
    yield name, ids
    found = route53.list_resource_record_sets(HostedZoneId=aws.zone_id)["ResourceRecordSets"]
    change(aws, *(("DELETE", r) for r in found if r["Name"] == name + "."))
    for health_check_id in ids.values():
        route53.delete_health_check(HealthCheckId=health_check_id)


def test_a_failover_pair_moves_after_exactly_the_failure_threshold_and_moves_back(
    plane: Route53DataPlane,
    checkers: Route53Checkers,
    pair: tuple[str, dict[str, str]],
    servers: dict[str, LocalWebServer],
) -> None:
    name, _ = pair
    plane.refresh()
    checkers.refresh()
    now = 0.0
    assert checkers.tick(now) > 0
    assert answered(plane, name) == (PRIMARY_ADDRESS,)
    servers["PRIMARY"].stop()
    for _ in range(2):  # failures 1 and 2 of 3: the checkers still call it healthy
        now += 10
        checkers.tick(now)
        assert answered(plane, name) == (PRIMARY_ADDRESS,)
    now += 10
    checkers.tick(now)
    assert answered(plane, name) == (SECONDARY_ADDRESS,)
    servers["PRIMARY"].start()  # the same address and port again
    for _ in range(2):
        now += 10
        checkers.tick(now)
        assert answered(plane, name) == (SECONDARY_ADDRESS,)
    now += 10
    checkers.tick(now)
    # Route 53 alone fails back to a recovered primary.
    assert answered(plane, name) == (PRIMARY_ADDRESS,)


def test_a_check_is_probed_once_per_interval_by_each_region(
    checkers: Route53Checkers, pair: tuple[str, dict[str, str]]
) -> None:
    checkers.refresh()
    assert checkers.tick(0.0) == 2 * len(CHECKER_REGIONS)
    # Not due again until one request interval later (10 s at the time factor 1).
    assert checkers.tick(9.9) == 0
    assert checkers.tick(10.0) == 2 * len(CHECKER_REGIONS)
    _, ids = pair
    regions = {o.region for o in checkers.observations(ids["PRIMARY"])}
    assert regions == set(CHECKER_REGIONS)


def test_both_checks_failing_fails_open_to_the_primary(
    plane: Route53DataPlane,
    checkers: Route53Checkers,
    pair: tuple[str, dict[str, str]],
    servers: dict[str, LocalWebServer],
) -> None:
    name, ids = pair
    plane.refresh()
    checkers.refresh()
    servers["PRIMARY"].stop()
    for now in (0.0, 10.0, 20.0):
        checkers.tick(now)
    assert answered(plane, name) == (SECONDARY_ADDRESS,)
    servers["SECONDARY"].healthy = False  # its health page answers 503 now
    for now in (30.0, 40.0, 50.0):
        checkers.tick(now)
    assert (checkers.healthy(ids["PRIMARY"]), checkers.healthy(ids["SECONDARY"])) == (False, False)
    assert answered(plane, name) == (PRIMARY_ADDRESS,)


def test_a_new_check_counts_as_healthy_until_it_has_data(
    aws: LocalAws,
    route53: Any,
    plane: Route53DataPlane,
    checkers: Route53Checkers,
    pair: tuple[str, dict[str, str]],
    servers: dict[str, LocalWebServer],
) -> None:
    name, _ = pair
    servers["PRIMARY"].stop()  # dead before Route 53 ever probed it
    plane.refresh()
    checkers.refresh()
    assert answered(plane, name) == (PRIMARY_ADDRESS,)
    for now in (0.0, 10.0):  # failures are no verdict until there are threshold of them
        checkers.tick(now)
        assert answered(plane, name) == (PRIMARY_ADDRESS,)
    checkers.tick(20.0)
    assert answered(plane, name) == (SECONDARY_ADDRESS,)


def test_a_plain_record_beside_a_pair_keeps_the_answer_route53_would_have(
    aws: LocalAws,
    plane: Route53DataPlane,
    checkers: Route53Checkers,
    pair: tuple[str, dict[str, str]],
) -> None:
    """moto accepts a plain record beside failover records of the same name; Route 53 refuses
    that change, so its answers stay the pair's."""
    name, _ = pair
    plane.refresh()
    checkers.refresh()
    assert answered(plane, name) == (PRIMARY_ADDRESS,)
    change(aws, ("CREATE", a_record(name, "127.0.4.99")))
    assert plane.refresh() is True
    assert answered(plane, name) == (PRIMARY_ADDRESS,)


def test_moto_reports_the_checkers_judgement_to_the_controllers_adapter(
    route53: Any,
    checkers: Route53Checkers,
    pair: tuple[str, dict[str, str]],
    servers: dict[str, LocalWebServer],
) -> None:
    """moto alone reports a fixed "Success" for every check; patched, it reports the checkers'."""
    _, ids = pair
    adapter = Route53HealthChecks(route53)
    with route53_status_from(checkers):
        checkers.refresh()
        # A check Route 53 has not probed yet has no reports.
        assert adapter.status(ids["PRIMARY"]) == ()
        servers["PRIMARY"].healthy = False
        before = time.time()
        checkers.tick(0.0)
        raw = route53.get_health_check_status(HealthCheckId=ids["PRIMARY"])
        observations = adapter.status(ids["PRIMARY"])
        secondary = adapter.status(ids["SECONDARY"])
    reports = raw["HealthCheckObservations"]
    assert sorted(r["Region"] for r in reports) == sorted(CHECKER_REGIONS)
    assert {r["StatusReport"]["Status"] for r in reports} == {
        "Failure: HTTP Status Code 503, Service Unavailable"
    }
    assert [o.healthy for o in observations] == [False] * len(CHECKER_REGIONS)
    assert all(o.checked_at >= before - 1 for o in observations)
    assert [o.healthy for o in secondary] == [True] * len(CHECKER_REGIONS)
    # Unpatched again: moto's own fixed answer.
    fixed = route53.get_health_check_status(HealthCheckId=ids["PRIMARY"])
    assert fixed["HealthCheckObservations"][0]["StatusReport"]["Status"].startswith("Success")


def test_a_tcp_check_needs_only_a_connection(route53: Any, checkers: Route53Checkers) -> None:
    listener = socket.create_server(("127.0.4.21", 0))
    port = listener.getsockname()[1]
    check = route53.create_health_check(
        CallerReference=f"tcp-{port}",
        HealthCheckConfig={
            "Type": "TCP",
            "IPAddress": "127.0.4.21",
            "Port": port,
            "RequestInterval": 30,
            "FailureThreshold": 2,
        },
    )["HealthCheck"]["Id"]
    try:
        checkers.refresh()
        checkers.tick(0.0)
        checkers.tick(30.0)
        assert checkers.healthy(check) is True
        assert {o.status for o in checkers.observations(check)} == {
            "Success: TCP connection established"
        }
        listener.close()
        checkers.tick(60.0)
        assert checkers.healthy(check) is True
        checkers.tick(90.0)
        assert checkers.healthy(check) is False
        statuses = {o.status for o in checkers.observations(check)}
        assert all(s.startswith("Failure: TCP connection failed") for s in statuses)
    finally:
        listener.close()
        route53.delete_health_check(HealthCheckId=check)


def test_a_check_outside_loopback_is_never_probed(route53: Any) -> None:
    probed: list[CheckConfig] = []

    def recording_probe(config: CheckConfig, time_factor: float) -> tuple[bool, str]:
        probed.append(config)
        return probe(config, time_factor)

    checkers = Route53Checkers(route53, probe_function=recording_probe)
    check = route53.create_health_check(
        CallerReference="outside",
        HealthCheckConfig={"Type": "HTTP", "IPAddress": "203.0.113.10", "Port": 80},
    )["HealthCheck"]["Id"]
    try:
        checkers.refresh()
        assert checkers.tick(0.0) == 0
        assert probed == []
        assert "outside 127.0.0.0/8" in checkers.not_probed()[check]
        # Never probed, it stays a check without data, which Route 53 counts healthy.
        assert checkers.healthy(check) is True
        assert checkers.observations(check) == ()
    finally:
        checkers.stop()
        route53.delete_health_check(HealthCheckId=check)


def test_on_the_real_clock_a_client_sees_the_failover_after_threshold_intervals(
    aws: LocalAws,
    route53: Any,
    pair: tuple[str, dict[str, str]],
    servers: dict[str, LocalWebServer],
) -> None:
    """The threads as the demo runs them: 10 s checks at the time factor 0.02 (0.2 s), threshold
    3, propagation 0, the record's TTL 60 s; the client's cache is what delays it most."""
    name, ids = pair
    with local_route53(aws, time_factor=0.02, propagation_seconds=0, poll_interval=0.05) as plane:
        assert plane.model_label() == (
            "Route 53 stand-in's model, not AWS's: health-check intervals x0.02"
            " (10 s checks every 0.2 s, 30 s checks every 0.6 s), propagation 0 s"
        )
        client_clock = Clock(0.0)
        client = CachingResolver(plane.address, plane.port, clock=client_clock)
        assert client.resolve(name) == (PRIMARY_ADDRESS,)
        servers["PRIMARY"].stop()
        killed = time.monotonic()
        while answered(plane, name) != (SECONDARY_ADDRESS,):
            assert time.monotonic() - killed < 5, "the pair never moved"
            time.sleep(0.02)
        moved = time.monotonic() - killed
        # Three failed probes: two whole intervals after the first failure (less a little: the
        # checkers read the clock just before a tick's probes go out).
        assert moved >= 2 * 0.2 - 0.05
        assert client.resolve(name) == (PRIMARY_ADDRESS,)  # cached: the TTL is not over
        client_clock.now = 60.0
        assert client.resolve(name) == (SECONDARY_ADDRESS,)
        # moto's status answers the running checkers' reports, as the controller reads them.
        reports = Route53HealthChecks(route53).status(ids["PRIMARY"])
        assert [o.healthy for o in reports] == [False] * len(CHECKER_REGIONS)


def test_a_client_keeps_a_negative_answer_for_the_soa_time_at_most_its_cap(
    aws: LocalAws, plane: Route53DataPlane
) -> None:
    name = f"later.{DOMAIN}"
    client_clock = Clock(0.0)
    capped = CachingResolver(plane.address, plane.port, clock=client_clock, max_negative_ttl=5)
    uncached = CachingResolver(plane.address, plane.port, clock=client_clock)
    assert capped.resolve(name) == uncached.resolve(name) == ()
    change(aws, ("CREATE", a_record(name, "127.0.4.5")))
    plane.refresh()
    assert uncached.resolve(name) == ("127.0.4.5",)
    client_clock.now = 4.9
    assert capped.resolve(name) == ()  # moto's SOA says 900 s; the cap is 5
    client_clock.now = 5.0
    assert capped.resolve(name) == ("127.0.4.5",)
    with pytest.raises(ResolveError, match="REFUSED"):
        capped.resolve("www.example.org")


# The rules without servers: tables over the pure parts.

PLAIN = RecordSet("www.x", "A", 60, ("127.0.4.9",))
PRIMARY = RecordSet("www.x", "A", 60, ("127.0.4.1",), "PRIMARY", "check-p")
SECONDARY = RecordSet("www.x", "A", 60, ("127.0.4.2",), "SECONDARY", "check-s")
UNCHECKED_SECONDARY = RecordSet("www.x", "A", 60, ("127.0.4.1",), "SECONDARY", None)


@pytest.mark.parametrize(
    ("records", "unhealthy", "answered"),
    [
        ((PRIMARY, SECONDARY), set(), PRIMARY),
        ((PRIMARY, SECONDARY), {"check-p"}, SECONDARY),
        ((PRIMARY, SECONDARY), {"check-s"}, PRIMARY),
        ((PRIMARY, SECONDARY), {"check-p", "check-s"}, PRIMARY),  # fails open
        ((PRIMARY, UNCHECKED_SECONDARY), {"check-p"}, UNCHECKED_SECONDARY),  # no check: healthy
        ((SECONDARY, PRIMARY), {"check-p"}, SECONDARY),  # roles, not the listing's order
    ],
)
def test_route_answers_a_pair_as_route53_does(
    records: tuple[RecordSet, ...], unhealthy: set[str], answered: RecordSet
) -> None:
    assert route(records, lambda check: check not in unhealthy) == (answered,)


def test_a_mix_of_plain_and_failover_keeps_what_was_answered_before() -> None:
    assert without_conflicts((PRIMARY, SECONDARY), (PRIMARY, SECONDARY, PLAIN)) == (
        PRIMARY,
        SECONDARY,
    )
    assert without_conflicts((PLAIN,), (PLAIN, PRIMARY, SECONDARY)) == (PLAIN,)
    # No version before it: the pair (the form the controller moves to in one batch).
    assert without_conflicts((), (PLAIN, PRIMARY, SECONDARY)) == (PRIMARY, SECONDARY)
    other = RecordSet("other.x", "A", 60, ("127.0.4.7",))
    assert without_conflicts((), (other, PLAIN)) == (other, PLAIN)


def judgement(regions: int, failing: int, **config: bool) -> CheckJudgement:
    """A check with threshold 1, `failing` of its `regions` checkers reporting a failure."""
    made = CheckJudgement(CheckConfig("c", "HTTP", "127.0.4.1", 80, "/", 10, 1, **config))
    for index in range(regions):
        made.record(Observation(f"region-{index}", index >= failing, "", 0.0))
    return made


@pytest.mark.parametrize(
    ("regions", "failing", "config", "healthy"),
    [
        (3, 2, {}, True),  # one of three (33%) is more than 18%
        (3, 3, {}, False),
        (6, 5, {}, False),  # one of six (17%) is not
        (3, 3, {"disabled": True}, True),  # Route 53 counts a disabled check healthy
        (3, 3, {"inverted": True}, True),
        (3, 0, {"inverted": True}, False),
    ],
)
def test_a_check_is_healthy_while_more_than_18_percent_of_checkers_say_so(
    regions: int, failing: int, config: dict[str, bool], healthy: bool
) -> None:
    assert judgement(regions, failing, **config).healthy is healthy


def test_a_checker_needs_threshold_results_in_a_row_to_change_its_verdict() -> None:
    check = CheckJudgement(CheckConfig("c", "HTTP", "127.0.4.1", 80, "/", 10, 3))
    verdicts = []
    for success in (False, False, True, False, False, False, True, True, False, True, True, True):
        check.record(Observation("us-east-1", success, "", 0.0))
        verdicts.append(check.healthy)
    # No data (healthy) until three failures in a row; back only after three successes in a row.
    assert verdicts == [True] * 5 + [False] * 6 + [True]


class _SlowOrMoved(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(1.5)
        self.send_response(200 if self.path == "/slow" else 301)
        self.send_header("Location", "http://203.0.113.10/")  # never followed
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture(params=["HTTP", "HTTPS"])
def slow_or_moved(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CheckConfig]:
    """A server answering 301 at once, or 200 after 1.5 s at /slow; the check's config."""
    server = ThreadingHTTPServer(("127.0.4.31", 0), _SlowOrMoved)
    server.daemon_threads = True
    if request.param == "HTTPS":
        server.socket = self_signed_context(tmp_path, "standin.invalid").wrap_socket(
            server.socket, server_side=True
        )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield CheckConfig("c", request.param, "127.0.4.31", server.server_address[1], "/", 10, 3)
    server.shutdown()
    server.server_close()
    thread.join()


def test_a_3xx_is_success_and_a_status_after_the_deadline_is_failure(
    slow_or_moved: CheckConfig,
) -> None:
    assert probe(slow_or_moved, 1.0) == (True, "Success: HTTP Status Code 301, Moved Permanently")
    # At the time factor 0.25 the 2 s deadline for the status is 0.5 s.
    success, status = probe(replace(slow_or_moved, resource_path="/slow"), 0.25)
    assert not success
    assert status.startswith("Failure: No HTTP status within the time limit")
