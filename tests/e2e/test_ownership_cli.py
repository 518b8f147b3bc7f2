"""The tester's report, replayed as it was found: the command line as a process, against moto's
server, with real loopback servers for the LBs and the web server.

`LBF_CLUSTER=egde python -m chalicelib reconcile` (a typo of `edge`) deleted the real cluster's
`lb1` and `lb2`, stored `/lbf/egde/notices` and exited 0. With `LBF_CLUSTER=other` (a cluster with
one LB of its own) the run took the domain over. Both must now exit 2, name the owner, and leave
everything an operator can see exactly as it was. Then `handover` hands the domain on.
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

DOMAIN = "owned.example.com"
ACTIVE = f"lb.{DOMAIN}"
LB_PORT = 18280
WEB_PORT = 18281


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with local_aws(DOMAIN) as aws:
        yield aws


def environment(aws: LocalAws, cluster: str) -> dict[str, str]:
    return aws.controller_environment(
        cluster=cluster,
        domain=DOMAIN,
        lb_port=LB_PORT,
        web_port=WEB_PORT,
        **FAST_ROUNDS,
    )


def everything(aws: LocalAws) -> dict[str, Any]:
    """Records, every instance's tags, every parameter: what an operator can see."""
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
    pages = aws.client("ssm").get_paginator("get_parameters_by_path")
    parameters = sorted(
        (p["Name"], p["Value"])
        for page in pages.paginate(Path="/lbf", Recursive=True)
        for p in page["Parameters"]
    )
    return {"instances": instances, "records": records, "parameters": parameters}


def launch(
    aws: LocalAws, servers: dict[str, LocalWebServer], cluster: str, address: str, **tags: str
) -> str:
    port = WEB_PORT if tags.get("role") == "web" else LB_PORT
    servers[address] = LocalWebServer(address, port).start()
    return aws.launch(address, {"lbf:cluster": cluster, **{f"lbf:{k}": v for k, v in tags.items()}})


def test_a_typo_or_another_cluster_is_refused_on_moto_and_handover_hands_the_domain_on(
    aws: LocalAws, servers: dict[str, LocalWebServer]
) -> None:
    launch(aws, servers, "edge", "127.0.1.61", role="lb", name="lb1")
    launch(aws, servers, "edge", "127.0.1.62", role="lb", name="lb2")
    launch(aws, servers, "edge", "127.0.1.63", role="web")
    edge = environment(aws, "edge")
    settings = Settings.from_env(edge)
    clock = FakeClock()
    for _ in range(2):
        assert jobs.reconcile(settings, aws_services(settings), clock).ok
        clock.advance(60)
    assert aws.a_record(ACTIVE) == ("127.0.1.61",)
    assert aws.a_record(f"lb2.{DOMAIN}") == ("127.0.1.62",)
    start = everything(aws)
    assert (f"_lbf.{DOMAIN}.", "TXT", ('"cluster=edge"', '"lb"', '"lb1"', '"lb2"')) in start[
        "records"
    ]

    # The typo: no instance carries `egde`.
    typo = run_cli(aws, environment(aws, "egde"), "reconcile")
    assert typo.returncode == 2, typo.stdout + typo.stderr
    assert "owned by cluster 'edge'" in typo.stderr
    assert "Traceback" not in typo.stderr
    assert everything(aws) == start
    assert aws.parameter("/lbf/egde/notices") is None

    # Another cluster with an LB of its own, named lb1 as well.
    launch(aws, servers, "other", "127.0.1.64", role="lb", name="lb1")
    with_other = everything(aws)
    for command in (["reconcile"], ["plan"], ["move-active", "--to", "lb1"], ["status"]):
        other = run_cli(aws, environment(aws, "other"), *command)
        assert other.returncode == 2, (command, other.stdout + other.stderr)
        assert "owned by cluster 'edge'" in other.stderr
        assert everything(aws) == with_other, command

    # The operator renames edge to edge-v2: the owner hands the domain over first.
    handed = run_cli(aws, edge, "handover", "edge-v2")
    assert handed.returncode == 0, handed.stdout + handed.stderr
    assert "handed owned.example.com from cluster edge to cluster edge-v2" in handed.stdout
    after = everything(aws)
    assert (f"_lbf.{DOMAIN}.", "TXT", ('"cluster=edge-v2"', '"lb"', '"lb1"', '"lb2"')) in after[
        "records"
    ]
    assert [r for r in after["records"] if r[1] == "A"] == [
        r for r in with_other["records"] if r[1] == "A"
    ]
    assert run_cli(aws, edge, "reconcile").returncode == 2  # the old name is refused from now on


@pytest.mark.parametrize("command", [["reconcile"], ["status"], ["pause"], ["drain", "lb1"]])
def test_a_hosted_zone_that_does_not_exist_is_bad_configuration_and_writes_nothing(
    aws: LocalAws, command: list[str]
) -> None:
    """A well-formed LBF_HOSTED_ZONE_ID of no zone (a typo, another account's): exit 2 naming
    it, as for a domain another cluster owns, not a failed read that would repeat every minute."""
    before = everything(aws)
    env = {**environment(aws, "edge"), "LBF_HOSTED_ZONE_ID": "Z0000000000000000000"}

    done = run_cli(aws, env, *command)

    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "LBF_HOSTED_ZONE_ID" in done.stderr
    assert "no hosted zone Z0000000000000000000" in done.stderr
    assert everything(aws) == before
