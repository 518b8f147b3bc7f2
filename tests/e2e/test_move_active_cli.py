"""`python -m chalicelib move-active` as an operator runs it: a process, against moto's server.

The LBs are real HTTP servers on loopback addresses, so the live probe of the candidates is a
real probe; the cluster is settled first by the scheduled job with the real adapters. Every
step compares everything an operator could see change (records, every instance's tags,
parameters, the Elastic IP) before and after: a refused or dry move must leave all of it as it
was. Which calls are made is counted on the in-memory AWS in tests/functional/test_move_active.py,
which also covers every rule case by case; here the point is the real command, end to end.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import jobs
from chalicelib.config import Settings
from chalicelib.services import aws_services
from standin.aws import LocalAws, local_aws
from standin.web import LocalWebServer
from tests.kit.cli_process import FAST_ROUNDS, run_cli
from tests.kit.cloud import FakeClock

pytestmark = pytest.mark.e2e

DOMAIN = "move.example.com"
ACTIVE = f"lb.{DOMAIN}"
LB_PORT = 18180
WEB_PORT = 18181


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with local_aws(DOMAIN) as aws:
        yield aws


def environment(aws: LocalAws, cluster: str, **extra: str) -> dict[str, str]:
    return aws.controller_environment(
        cluster=cluster,
        domain=DOMAIN,
        lb_port=LB_PORT,
        web_port=WEB_PORT,
        **FAST_ROUNDS,
        **extra,
    )


def settle(env: dict[str, str]) -> None:
    settings = Settings.from_env(env)
    clock = FakeClock()
    for _ in range(2):
        report = jobs.reconcile(settings, aws_services(settings), clock)
        assert report.ok, report.errors
        clock.advance(60)


def everything(aws: LocalAws, cluster: str) -> dict[str, Any]:
    """What an operator can see: records, each instance's tags, parameters, the Elastic IPs."""
    ec2 = aws.client("ec2")
    instances = {
        i["InstanceId"]: sorted((t["Key"], t["Value"]) for t in i.get("Tags", []))
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
    }
    records = sorted(
        (r["Name"], r["Type"], tuple(v["Value"] for v in r.get("ResourceRecords", [])))
        for r in aws.client("route53").list_resource_record_sets(HostedZoneId=aws.zone_id)[
            "ResourceRecordSets"
        ]
    )
    parameters = sorted(
        (p["Name"], p["Value"])
        for p in aws.client("ssm").get_parameters_by_path(Path=f"/lbf/{cluster}")["Parameters"]
    )
    addresses = sorted(
        (a.get("AllocationId"), a.get("InstanceId")) for a in ec2.describe_addresses()["Addresses"]
    )
    return {"instances": instances, "records": records, "parameters": parameters, "eip": addresses}


def launch_cluster(
    aws: LocalAws, servers: dict[str, LocalWebServer], cluster: str, first: int
) -> tuple[str, str]:
    lb1 = aws.launch(
        f"127.0.1.{first}", {"lbf:cluster": cluster, "lbf:role": "lb", "lbf:name": "lb1"}
    )
    lb2 = aws.launch(
        f"127.0.1.{first + 1}", {"lbf:cluster": cluster, "lbf:role": "lb", "lbf:name": "lb2"}
    )
    aws.launch(f"127.0.1.{first + 2}", {"lbf:cluster": cluster, "lbf:role": "web"})
    for host, port in ((first, LB_PORT), (first + 1, LB_PORT), (first + 2, WEB_PORT)):
        address = f"127.0.1.{host}"
        servers[address] = LocalWebServer(address, port).start()
    return lb1, lb2


def test_move_active_on_moto_every_refusal_writes_nothing_then_the_drain_moves(
    aws: LocalAws, servers: dict[str, LocalWebServer]
) -> None:
    cluster = "moving"
    env = environment(aws, cluster)
    lb1, lb2 = launch_cluster(aws, servers, cluster, 41)
    settle(env)
    assert aws.a_record(ACTIVE) == ("127.0.1.41",)
    start = everything(aws, cluster)

    # LBF_DRY_RUN: the plan is printed, nothing changes, tags included (the reported bug).
    dry = run_cli(
        aws, env | {"LBF_DRY_RUN": "true"}, "move-active", "--drain", "lb1", "--to", "lb2"
    )
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "would change: 4" in dry.stdout
    assert f"CREATE {ACTIVE} A 127.0.1.42" in dry.stdout
    assert "lbf:maintenance=drain" in dry.stdout
    assert everything(aws, cluster) == start

    # Paused: refused, exit 1.
    aws.client("ssm").put_parameter(Name=f"/lbf/{cluster}/paused", Value="true", Type="String")
    paused_start = everything(aws, cluster)
    paused = run_cli(aws, env, "move-active", "--drain", "lb1")
    assert paused.returncode == 1
    assert "refused, nothing changed: paused" in paused.stdout
    assert everything(aws, cluster) == paused_start
    aws.client("ssm").delete_parameter(Name=f"/lbf/{cluster}/paused")

    # The target fails the live probe (its tags still say healthy): refused, exit 1.
    servers.pop("127.0.1.42").stop()
    dead = run_cli(aws, env, "move-active", "--drain", "lb1", "--to", "lb2")
    assert dead.returncode == 1
    assert "lb2 did not answer the live probe" in dead.stdout
    assert everything(aws, cluster) == start

    # Bad configuration: exit 2, naming the variable, before any AWS call.
    bad = run_cli(aws, env | {"LBF_TTL": "sixty"}, "move-active", "--to", "lb2")
    assert bad.returncode == 2
    assert "LBF_TTL" in bad.stderr
    assert "Traceback" not in bad.stderr

    # lb2 answers again: the drain moves the record with one compare-and-swap, then tags lb1.
    servers["127.0.1.42"] = LocalWebServer("127.0.1.42", LB_PORT).start()
    moved = run_cli(aws, env, "move-active", "--drain", "lb1")
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert aws.a_record(ACTIVE) == ("127.0.1.42",)
    assert aws.tags(lb1)["lbf:maintenance"] == "drain"
    assert aws.tags(lb1)["lbf:state"] == "standby"
    assert aws.tags(lb2)["lbf:state"] == "active"
    assert "checked lb2 (127.0.1.42): healthy, backend list current; live probe answered" in (
        moved.stdout
    )
    assert "INSYNC" in moved.stdout

    # A scheduled run afterwards keeps it there.
    settle(env)
    assert aws.a_record(ACTIVE) == ("127.0.1.42",)


def test_move_active_on_moto_moves_the_elastic_ip(
    aws: LocalAws, servers: dict[str, LocalWebServer]
) -> None:
    cluster = "moving-eip"
    ec2 = aws.client("ec2")
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    # Its own domain: the active record of this cluster holds the Elastic IP.
    aws.client("route53").create_hosted_zone(
        Name="eip.move.example.com.", CallerReference="eip.move.example.com"
    )
    env = environment(aws, cluster, LBF_MODE="eip", LBF_EIP_ALLOCATION_ID=allocation) | {
        "LBF_DOMAIN": f"eip.{DOMAIN}"
    }
    zones = aws.client("route53").list_hosted_zones_by_name(DNSName=f"eip.{DOMAIN}.")
    env["LBF_HOSTED_ZONE_ID"] = zones["HostedZones"][0]["Id"].split("/")[-1]
    lb1, lb2 = launch_cluster(aws, servers, cluster, 51)
    settle(env)

    def holder() -> str | None:
        found = ec2.describe_addresses(AllocationIds=[allocation])["Addresses"][0]
        return found.get("InstanceId") or None

    assert holder() == lb1

    dry = run_cli(aws, env | {"LBF_DRY_RUN": "true"}, "move-active", "--to", "lb2")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"move Elastic IP {allocation} to lb2" in dry.stdout
    assert holder() == lb1

    moved = run_cli(aws, env, "move-active", "--to", "lb2")
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert holder() == lb2
    assert aws.tags(lb2)["lbf:state"] == "active"
    assert "INSYNC" not in moved.stdout  # nothing in Route 53 to wait for
