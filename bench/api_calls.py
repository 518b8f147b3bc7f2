"""AWS calls per run: a steady run, a failover run and a pool change run, 2 LBs and 50 web servers.

Every call the controller makes goes through the boto3 clients of `chalicelib.adapters.clients`
(made once per process and shared), so hooking botocore's `before-call` event on those clients
counts each API call by service and operation, pages included; `before-send` counts HTTP
attempts (retries included) and the bytes that travel, which the cost benchmark turns into NAT
data. The job is the real one against moto's server with the default settings (6 rounds, RISE
2, FALL 3); only sleeping is skipped (`FastForwardClock`), since calls are counted, not timed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.calls import CallCounter, Counted, is_write
from bench.report import Figure, Progress, Section, table
from bench.world import (
    FastForwardClock,
    Observer,
    environment,
    quiet_controller,
    use_subnet,
)
from chalicelib import jobs
from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.report import Report
from chalicelib.services import Services, aws_services
from standin.aws import LocalAws, local_aws
from standin.web import LocalWebServer

# Page sizes that decide how many reads a run needs: DescribeInstances with PageSize 500 (our
# adapter), ListResourceRecordSets' default of 300 record sets per page.
INSTANCES_PER_PAGE = 500
RECORDS_PER_PAGE = 300
CONVERGE_RUNS = 8  # a world that needs more runs than this to settle is a finding in itself


@dataclass
class CallWorld:
    """LBs and web servers as real HTTP servers on loopback, the job run one invocation at a time.

    The LBs are plain HTTP servers here (their `/health` answers 200): what is counted is the
    controller's AWS calls, and an LB's probe is the same HTTP probe either way.
    """

    aws: LocalAws
    settings: Settings
    lb_addresses: dict[str, str]
    web_addresses: list[str]
    lb_port: int
    web_port: int
    servers: dict[str, LocalWebServer] = field(default_factory=dict)  # address -> server
    counter: CallCounter = field(default_factory=CallCounter)
    services: Services | None = None

    def start(self) -> None:
        cluster = self.settings.cluster
        for name, address in self.lb_addresses.items():
            tags = {"lbf:cluster": cluster, "lbf:role": "lb", "lbf:name": name}
            self.aws.launch(address, tags)
            self.servers[address] = LocalWebServer(address, self.lb_port).start()
        for address in self.web_addresses:
            self.aws.launch(address, {"lbf:cluster": cluster, "lbf:role": "web"})
            self.servers[address] = LocalWebServer(address, self.web_port).start()
        self.services = aws_services(self.settings)
        self.counter.attach()
        self.counter.take()

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()

    def invoke(self, clock: Clock | None = None) -> tuple[Report, Counted]:
        """One invocation; then the clock moves to the next scheduled minute."""
        chosen = clock or FastForwardClock()
        assert self.services is not None, "start() first"
        self.counter.take()
        report = jobs.reconcile(self.settings, self.services, chosen)
        counted = self.counter.take()
        if isinstance(chosen, FastForwardClock):
            chosen.sleep(60 - report.seconds % 60)
        return report, counted

    def converge(self, clock: FastForwardClock) -> list[Counted]:
        """Runs until one makes no write call; every run's calls, that last one included."""
        runs = []
        for _ in range(CONVERGE_RUNS):
            _, counted = self.invoke(clock)
            runs.append(counted)
            if not counted.writes:
                return runs
        raise RuntimeError(f"no run without writes after {CONVERGE_RUNS} runs: {runs[-1].writes}")

    def active_address(self) -> str:
        values = Observer(self.aws).a_record(self.settings.active_record_name)
        if len(values) != 1:
            raise RuntimeError(f"the active record holds {values}")
        return values[0]

    def take_down(self, address: str) -> None:
        self.servers[address].stop()

    def bring_back(self, address: str) -> None:
        port = self.lb_port if address in self.lb_addresses.values() else self.web_port
        self.servers[address] = LocalWebServer(address, port).start()


DOMAIN = "calls.bench.example.com"
CLUSTER = "bench-calls"
SUBNET = "127.0.6.0/24"
LB_PORT, WEB_PORT = 28180, 28181


def addresses(prefix: str, first: int, count: int) -> list[str]:
    return [f"{prefix}.{first + i}" for i in range(count)]


def run(progress: Progress, *, quick: bool = False) -> Section:
    web_count = 10 if quick else 50
    with local_aws(DOMAIN) as aws, quiet_controller():
        use_subnet(aws, SUBNET)
        topic = aws.client("sns").create_topic(Name="lb-failover-bench")["TopicArn"]
        settings = Settings.from_env(
            environment(
                aws,
                cluster=CLUSTER,
                domain=DOMAIN,
                lb_port=LB_PORT,
                web_port=WEB_PORT,
                extra={"LBF_SNS_TOPIC_ARN": topic},
            )
        )
        world = CallWorld(
            aws=aws,
            settings=settings,
            lb_addresses={"lb1": "127.0.6.11", "lb2": "127.0.6.12"},
            web_addresses=addresses("127.0.6", 100, web_count),
            lb_port=LB_PORT,
            web_port=WEB_PORT,
        )
        clock = FastForwardClock()
        try:
            world.start()
            converging = world.converge(clock)
            progress(f"api-calls: converged in {len(converging)} runs")
            _, steady = world.invoke(clock)

            active = world.active_address()
            world.take_down(active)
            failover_report, failover = world.invoke(clock)
            progress(f"api-calls: failover run, {len(failover_report.failovers)} failover")
            world.bring_back(active)
            world.converge(clock)

            world.take_down(world.web_addresses[-1])
            pool_report, pool = world.invoke(clock)
            progress("api-calls: pool change run")
        finally:
            world.stop()
    return _section(
        web_count,
        steady=steady,
        failover=failover,
        failovers=len(failover_report.failovers),
        pool=pool,
        pool_errors=pool_report.errors,
        converging=converging,
    )


def _section(
    web_count: int,
    *,
    steady: Counted,
    failover: Counted,
    failovers: int,
    pool: Counted,
    pool_errors: list[str],
    converging: list[Counted],
) -> Section:
    section = Section(name="api-calls", title="AWS calls per run")
    instances = web_count + 2
    inventory_pages = math.ceil(instances / INSTANCES_PER_PAGE)
    record_pages = 1  # the cluster's records (5 here) fit one page of RECORDS_PER_PAGE
    steady_ok = (
        not steady.writes
        and steady.count("ec2.DescribeInstances") == inventory_pages
        and steady.count("route53.ListResourceRecordSets") == record_pages
    )
    section.figures.append(
        Figure(
            f"steady run (2 LBs, {web_count} web)",
            f"{steady.total} calls, {sum(steady.writes.values())} writes",
            target="no write; inventory and records read once (+ pages)",
            met=steady_ok,
            note="" if steady_ok else f"writes {steady.writes}",
        )
    )
    batches = failover.count("route53.ChangeResourceRecordSets")
    section.figures.append(
        Figure(
            "failover run",
            f"{failover.total} calls, {batches} Route 53 change batch"
            + ("" if batches == 1 else "es"),
            target="exactly 1 change batch",
            met=batches == 1 and failovers == 1,
            note="" if batches == 1 else f"{batches} batches for {failovers} failover",
        )
    )
    pushes = pool.count("ssm.SendCommand")
    section.figures.append(
        Figure(
            "pool change run (1 web server stops answering)",
            f"{pool.total} calls: {pushes} SendCommand, "
            f"{pool.count('ssm.PutParameter')} PutParameter",
            target="one push per LB",
            met=pushes == 2 and not pool_errors,
            note="" if pushes == 2 else f"{pushes} pushes for 2 LBs",
        )
    )
    section.figures.append(
        Figure(
            "from nothing to steady",
            f"{len(converging)} runs, {sum(c.total for c in converging)} calls",
        )
    )
    runs = {"steady": steady, "failover": failover, "pool change": pool}
    keys = sorted({k for c in runs.values() for k in c.calls})
    rows: list[tuple[object, ...]] = [
        (
            key,
            "write" if is_write(key.split(".", 1)[1]) else "read",
            *(c.count(key) for c in runs.values()),
        )
        for key in keys
    ]
    rows.append(("**total calls**", "", *(c.total for c in runs.values())))
    rows.append(("HTTP requests (retries included)", "", *(c.attempts for c in runs.values())))
    rows.append(
        (
            "bytes sent / received",
            "",
            *(f"{c.bytes_sent:,} / {c.bytes_received:,}" for c in runs.values()),
        )
    )
    section.details += [
        f"The real job, default settings (6 rounds, RISE 2, FALL 3), against moto's server; "
        f"2 LBs and {web_count} web servers as real HTTP servers on 127.0.6.0/24. Calls counted "
        "with botocore's `before-call` hook on the controller's own clients (one per service, "
        "shared). *steady*: a run after the world converged; *failover*: the active LB stops "
        "answering before the run; *pool change*: one web server stops answering before the "
        "run. Each is one invocation, as the SPEC defines a run.",
        table(("call", "kind", *runs), rows),
    ]
    section.data = {
        "web_servers": web_count,
        "runs": {name: c.__dict__ for name, c in runs.items()},
        "converging": [c.__dict__ for c in converging],
    }
    return section
