"""Route 53's data plane on loopback: real DNS answers for moto's hosted zone.

This is the stand-in's model of Route 53, not AWS's own: figures measured through it (failover
times, answer changes) show the project against Route 53's documented rules, and whatever prints
them labels them so, with the checkers' time factor (standin/route53_checkers.py).

`Route53DataPlane` serves UDP and TCP on a loopback address and a free port, with dnslib's server
and wire format. It answers what Route 53's name servers would:
- the zone's records, read from moto; the answer's TTL is the record's TTL; a name absent from
  the zone is NXDOMAIN (with the zone's SOA, for negative caching), a name outside it REFUSED;
- a failover pair by the health checks, as Route 53's checkers judge them (route53_checkers): the
  PRIMARY while its check is healthy (or it has none), else the SECONDARY if its check is healthy
  (or it has none), and the PRIMARY when both are unhealthy (Route 53 fails open);
- a change only `propagation_seconds` after it was made: moto's records are polled often and each
  version is stamped with the time it was first seen (Route 53 reports changes INSYNC within
  about a minute). What moto held when the data plane started counts as already propagated.

moto accepts a plain record beside failover records of the same name and type; Route 53 refuses
the change that would create that. So for such a name and type the answer stays what it was before
the conflict appeared (the previous version's records), as Route 53's would; a conflict present
from the first read answers the failover records alone. (Route 53 would refuse the whole batch;
polling cannot tell batches apart, so only the conflicting name keeps its old answer.)
Alias records are not answered. Two plain record sets of one name (moto's CREATE over an existing
name) are both answered, so the duplicate shows instead of hiding.

`CachingResolver` is the client side: a real query to the data plane, and each answer cached for
its TTL on an injectable clock, so client figures include the TTL as real clients see it.
"""

from __future__ import annotations

import ast
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from dnslib import QTYPE, RCODE, RR, DNSError, DNSRecord  # type: ignore[import-untyped]
from dnslib.server import DNSLogger, DNSServer  # type: ignore[import-untyped]

from standin.aws import LocalAws
from standin.route53_checkers import Route53Checkers, route53_status_from
from standin.web import loopback

log = logging.getLogger(__name__)

PLAIN = ""  # the Failover value of a record that is not part of a failover pair


@dataclass(frozen=True)
class RecordSet:
    """One record set of the zone, as list_resource_record_sets gives it."""

    name: str  # lower case, without the trailing dot
    kind: str  # the record type: A, TXT, ...
    ttl: int
    values: tuple[str, ...]
    failover: str = PLAIN  # PRIMARY, SECONDARY or PLAIN
    health_check_id: str | None = None

    @classmethod
    def from_api(cls, item: dict[str, Any]) -> RecordSet:
        return cls(
            name=_name(item["Name"]),
            kind=str(item["Type"]),
            ttl=int(item.get("TTL", 300)),
            values=tuple(_value(str(r["Value"])) for r in item.get("ResourceRecords", [])),
            failover=str(item.get("Failover", PLAIN)),
            health_check_id=item.get("HealthCheckId"),
        )


@dataclass(frozen=True)
class Answer:
    rcode: str  # NOERROR, NXDOMAIN or REFUSED
    records: tuple[RecordSet, ...] = ()


def _value(value: str) -> str:
    """moto 5.2.5 lists the zone's own SOA value as the text of a dict ("{'Value': '...'}")."""
    if value.startswith("{'Value': "):
        found = ast.literal_eval(value)
        if isinstance(found, dict) and isinstance(found.get("Value"), str):
            return str(found["Value"])
    return value


def _name(value: str) -> str:
    """Route 53 names end with a dot and DNS names are case-insensitive: one form to compare."""
    return value.rstrip(".").lower()


def without_conflicts(
    previous: Sequence[RecordSet], current: Sequence[RecordSet]
) -> tuple[RecordSet, ...]:
    """`current`, with each name and type that mixes plain and failover records kept as it was
    in `previous` (Route 53 would have refused the change that created the mix)."""
    groups: dict[tuple[str, str], list[RecordSet]] = {}
    for record in current:
        groups.setdefault((record.name, record.kind), []).append(record)
    kept: list[RecordSet] = []
    for key, records in groups.items():
        kinds = {r.failover == PLAIN for r in records}
        if len(kinds) == 1:
            kept += records
            continue
        before = [r for r in previous if (r.name, r.kind) == key]
        kept += before or [r for r in records if r.failover != PLAIN]
        log.warning("%s %s: a plain record beside failover records, which Route 53 refuses", *key)
    return tuple(kept)


def route(records: Sequence[RecordSet], healthy: Callable[[str], bool]) -> tuple[RecordSet, ...]:
    """The record sets Route 53 answers for one name and type."""
    plain = tuple(r for r in records if r.failover == PLAIN)
    if plain:
        return plain
    pair = [r for role in ("PRIMARY", "SECONDARY") for r in records if r.failover == role]
    for record in pair:
        if record.health_check_id is None or healthy(record.health_check_id):
            return (record,)
    # Every record's check is unhealthy: Route 53 fails open, to the primary.
    return tuple(pair[:1])


def _resource_records(records: Sequence[RecordSet]) -> list[RR]:
    """dnslib's wire records, from the values' zone-file form (the form Route 53's API uses)."""
    made: list[RR] = []
    for record in records:
        for value in record.values:
            zone_line = f"{record.name}. {record.ttl} IN {record.kind} {value}"
            try:
                made += RR.fromZone(zone_line)
            except (DNSError, ValueError, IndexError, KeyError):  # dnslib's errors on bad text
                log.warning("cannot answer %r: not a valid zone-file record", zone_line)
    return made


class Route53DataPlane:
    """Answers DNS queries for one hosted zone of moto's, as Route 53's name servers would."""

    def __init__(
        self,
        route53: Any,
        zone_id: str,
        checkers: Route53Checkers,
        *,
        propagation_seconds: float = 0.0,
        address: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.address = loopback(address)
        self.port = port
        self.propagation_seconds = propagation_seconds
        self.checkers = checkers
        self._route53 = route53
        self._zone_id = zone_id
        self._clock = clock
        self._lock = threading.Lock()
        # (first seen, records), oldest first; the first version counts as propagated.
        self._versions: list[tuple[float, tuple[RecordSet, ...]]] = []
        self._seen: tuple[RecordSet, ...] | None = None
        self.zone = _name(route53.get_hosted_zone(Id=zone_id)["HostedZone"]["Name"])
        self._servers: list[DNSServer] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def model_label(self) -> str:
        """What every printed figure measured through the data plane carries."""
        factor = self.checkers.time_factor
        return (
            "Route 53 stand-in's model, not AWS's: health-check intervals x"
            f"{factor:g} (10 s checks every {10 * factor:g} s, 30 s checks every"
            f" {30 * factor:g} s), propagation {self.propagation_seconds:g} s"
        )

    def read_records(self) -> tuple[RecordSet, ...]:
        records: list[RecordSet] = []
        for page in self._route53.get_paginator("list_resource_record_sets").paginate(
            HostedZoneId=self._zone_id
        ):
            records += [RecordSet.from_api(item) for item in page["ResourceRecordSets"]]
        return tuple(sorted(records, key=repr))

    def refresh(self, now: float | None = None) -> bool:
        """Read moto's records; a change becomes a new version seen at `now`. True if changed."""
        now = self._clock() if now is None else now
        current = self.read_records()
        with self._lock:
            if current == self._seen:
                return False
            previous = self._versions[-1][1] if self._versions else ()
            seen_at = now if self._versions else float("-inf")
            self._versions.append((seen_at, without_conflicts(previous, current)))
            self._seen = current
        return True

    def visible(self, now: float) -> tuple[RecordSet, ...]:
        """The records the name servers answer from at `now`: the newest version propagated."""
        with self._lock:
            propagated = [r for seen, r in self._versions if seen + self.propagation_seconds <= now]
            # Versions older than the newest propagated one are never answered again.
            del self._versions[: max(0, len(propagated) - 1)]
        return propagated[-1] if propagated else ()

    def answer(self, name: str, kind: str, now: float | None = None) -> Answer:
        name = _name(name)
        if name != self.zone and not name.endswith("." + self.zone):
            return Answer("REFUSED")
        records = self.visible(self._clock() if now is None else now)
        named = [r for r in records if r.name == name]
        if not named:
            return Answer("NXDOMAIN", tuple(r for r in records if r.kind == "SOA"))
        typed = [r for r in named if r.kind == kind] or [r for r in named if r.kind == "CNAME"]
        return Answer("NOERROR", route(typed, self.checkers.healthy))

    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        """dnslib's resolver interface: one reply to one query."""
        reply = request.reply()
        question = request.q
        answer = self.answer(str(question.qname), QTYPE[question.qtype])
        reply.header.rcode = getattr(RCODE, answer.rcode)
        reply.header.aa = int(answer.rcode != "REFUSED")
        for rr in _resource_records(answer.records):
            if answer.rcode == "NXDOMAIN":
                reply.add_auth(rr)
            else:
                reply.add_answer(rr)
        return reply

    def start(self, *, poll_interval: float = 0.1) -> Route53DataPlane:
        """Serve UDP and TCP on one port (a free one when `port` is 0); poll moto's records."""
        self.refresh()
        # dnslib prints every query by default; only its errors are worth a line, in the log.
        quiet = DNSLogger(
            log="-recv,-send,-request,-reply,-truncated,-data",
            logf=lambda line: log.warning("%s", line),
        )
        udp, tcp = self._bind(quiet)
        self._servers = [udp, tcp]
        for server in self._servers:
            # Not dnslib's start_thread: its half-second poll would make every stop take a second.
            threading.Thread(
                target=server.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            ).start()
        self._thread = threading.Thread(
            target=self._poll, args=(poll_interval,), daemon=True, name="route53-records"
        )
        self._thread.start()
        return self

    def _bind(self, quiet: DNSLogger) -> tuple[DNSServer, DNSServer]:
        """UDP and TCP on one port. A port the kernel finds free for one protocol may be taken in
        the other (a busy machine's listeners), so a free port is looked for a few times."""
        tries = 20 if self.port == 0 else 1
        for attempt in range(tries):
            tcp = DNSServer(self, address=self.address, port=self.port, tcp=True, logger=quiet)
            port = int(tcp.server.server_address[1])
            try:
                udp = DNSServer(self, address=self.address, port=port, logger=quiet)
            except OSError:
                tcp.server.server_close()
                if attempt == tries - 1:
                    raise
                continue
            self.port = port
            return udp, tcp
        raise AssertionError("unreachable")  # the loop returns or raises

    def _poll(self, poll_interval: float) -> None:
        while not self._stop.wait(poll_interval):
            try:
                self.refresh()
            except Exception:  # a moto hiccup must not freeze the answers for good
                log.exception("reading the zone's records failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        for server in self._servers:
            server.stop()
            server.server.server_close()
        self._servers = []


@contextmanager
def local_route53(
    aws: LocalAws,
    *,
    time_factor: float,
    propagation_seconds: float,
    poll_interval: float = 0.1,
    address: str = "127.0.0.1",
) -> Iterator[Route53DataPlane]:
    """The whole data plane for a LocalAws, running: checkers on the real clock, moto's
    GetHealthCheckStatus answering their reports, and the DNS server polling the zone."""
    route53 = aws.client("route53")
    checkers = Route53Checkers(route53, time_factor=time_factor).start(refresh_every=poll_interval)
    plane = Route53DataPlane(
        route53, aws.zone_id, checkers, propagation_seconds=propagation_seconds, address=address
    )
    try:
        with route53_status_from(checkers):
            plane.start(poll_interval=poll_interval)
            yield plane
    finally:
        plane.stop()
        checkers.stop()


class ResolveError(RuntimeError):
    pass


class CachingResolver:
    """A client's resolver: asks the data plane, and keeps each answer for its TTL.

    Negative answers (NXDOMAIN, no records of the type) are kept for the SOA's negative TTL, as
    RFC 2308 says, but at most `max_negative_ttl` (0 by default: the demo and the benchmarks ask
    for the active name before it exists, and resolvers cap it too).
    """

    def __init__(
        self,
        address: str,
        port: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = 2.0,
        tcp: bool = False,
        max_negative_ttl: float = 0.0,
    ) -> None:
        self.address = loopback(address)
        self.port = port
        self.queries = 0  # queries sent, for tests and figures: cache hits send none
        self._clock = clock
        self._timeout = timeout
        self._tcp = tcp
        self._max_negative_ttl = max_negative_ttl
        self._cache: dict[tuple[str, str], tuple[float, tuple[str, ...]]] = {}
        self._lock = threading.Lock()

    def resolve(self, name: str, kind: str = "A") -> tuple[str, ...]:
        """The values of the answer (empty when there is none), from the cache while it lasts."""
        key = (_name(name), kind)
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and now < cached[0]:
                return cached[1]
        reply = self.query(name, kind)
        values = tuple(str(rr.rdata) for rr in reply.rr if QTYPE[rr.rtype] == kind)
        with self._lock:
            self._cache[key] = (now + self._ttl(reply), values)
        return values

    def query(self, name: str, kind: str = "A") -> DNSRecord:
        """One real query, no cache; REFUSED and SERVFAIL raise ResolveError."""
        question = DNSRecord.question(name, kind)
        try:
            raw = question.send(self.address, self.port, tcp=self._tcp, timeout=self._timeout)
        except OSError as exc:
            raise ResolveError(f"no answer from {self.address}:{self.port}: {exc}") from exc
        with self._lock:
            self.queries += 1
        reply = DNSRecord.parse(raw)
        rcode = RCODE[reply.header.rcode]
        if rcode not in ("NOERROR", "NXDOMAIN"):
            raise ResolveError(f"{name} {kind}: {rcode}")
        return reply

    def _ttl(self, reply: DNSRecord) -> float:
        if reply.rr:
            return float(min(rr.ttl for rr in reply.rr))
        soa = [rr for rr in reply.auth if QTYPE[rr.rtype] == "SOA"]
        negative = min((min(rr.ttl, rr.rdata.times[-1]) for rr in soa), default=0)
        return float(min(negative, self._max_negative_ttl))

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()
