"""`python -m chalicelib reconcile` against moto's server with LBF_DOMAIN outside the hosted zone.

Route 53 (here moto, as a process would reach it) rejects every record of the domain. The run must
judge that by re-reading, never call it stale, and keep everything that is not a record going: the
backend list parameter and the push to every LB. The exact batches are pinned with the Stubber in
tests/functional/test_rules_meet_aws.py (moto accepts a stale DELETE and applies a batch change by
change, so it cannot show them); here the point is the real command over the wire.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chalicelib.core.backends import checksum
from standin.aws import LocalAws, local_aws
from standin.web import LocalWebServer
from tests.kit.cli_process import FAST_ROUNDS, run_cli

pytestmark = pytest.mark.e2e

ZONE = "zone.example.com"
DOMAIN = "outside.example.org"  # not in the hosted zone
CLUSTER = "outside"
LB_PORT = 18280
WEB_PORT = 18281
LBS = ("127.0.1.61", "127.0.1.62")
WEB = "127.0.1.63"


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with local_aws(ZONE) as aws:
        yield aws


def test_reconcile_with_the_domain_outside_the_zone_still_publishes_and_pushes_the_list(
    aws: LocalAws, servers: dict[str, LocalWebServer]
) -> None:
    lbs = [
        aws.launch(address, {"lbf:cluster": CLUSTER, "lbf:role": "lb", "lbf:name": f"lb{n}"})
        for n, address in enumerate(LBS, start=1)
    ]
    aws.launch(WEB, {"lbf:cluster": CLUSTER, "lbf:role": "web"})
    for address, port in zip((*LBS, WEB), (LB_PORT, LB_PORT, WEB_PORT), strict=True):
        servers[address] = LocalWebServer(address, port).start()
    env = aws.controller_environment(
        cluster=CLUSTER,
        domain=DOMAIN,
        lb_port=LB_PORT,
        web_port=WEB_PORT,
        **FAST_ROUNDS,
    )

    process = run_cli(aws, env, "reconcile")
    output = process.stdout + process.stderr

    assert process.returncode == 1, output  # an action failed
    assert f"is not permitted in zone {ZONE}" in output
    assert "permanent" in output
    assert "stale" not in output
    assert "active record: left as it is: Route 53 rejects the change" in output
    # Everything that is not a record went on: the backend list and its push to each LB.
    backends = f"{WEB}:{WEB_PORT}"
    assert aws.parameter(f"/lbf/{CLUSTER}/backends") == backends
    commands = aws.client("ssm").list_commands()["Commands"]
    pushed = [c for c in commands if c["Parameters"].get("Backends") == [backends]]
    assert len(pushed) == len(lbs)  # one SendCommand per LB (moto lists every instance in each)
    # Each LB confirmed the list, in the same run: lbf:backends follows a push that succeeded.
    assert [aws.tags(lb).get("lbf:backends") for lb in lbs] == [checksum(backends)] * len(lbs)
    assert aws.parameter(f"/lbf/{CLUSTER}/lbs") == " ".join(LBS)
    # And nothing of the domain reached the zone.
    records = aws.client("route53").list_resource_record_sets(HostedZoneId=aws.zone_id)
    assert [r["Type"] for r in records["ResourceRecordSets"]] == ["NS", "SOA"]
