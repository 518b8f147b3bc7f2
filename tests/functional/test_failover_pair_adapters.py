"""The failover pair's records and checks through the adapters: against moto where it keeps what
it is given, and against botocore's Stubber where the exact request matters.

moto stores failover records as given, but accepts what Route 53 refuses (a plain record beside a
failover pair, a DELETE that no longer matches): those batches are pinned with the Stubber.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from chalicelib.adapters import clients
from chalicelib.adapters.route53 import Route53Records
from chalicelib.adapters.route53_health_checks import Route53HealthChecks
from chalicelib.core.dns import RecordChange
from chalicelib.core.failover_pair import (
    PRIMARY,
    SECONDARY,
    pair_record,
    read_active_name,
    swap_batch,
)
from chalicelib.core.model import HealthCheckSpec, Record
from chalicelib.core.second_opinion import caller_reference
from chalicelib.services import aws_services
from standin.moto_fixes import route53_moves_back
from tests.kit.aws_env import use_fake_credentials
from tests.kit.settings import settings

DOMAIN = "prod.example.com"
ACTIVE = f"lb.{DOMAIN}"
NOW = 1_700_000_000.0
LB1, LB2 = "52.1.2.11", "52.1.2.12"


@pytest.fixture
def route53(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    use_fake_credentials(monkeypatch, "us-east-1", clear=True)
    with mock_aws():
        yield boto3.client("route53", region_name="us-east-1")
    clients.forget_clients()


def test_a_failover_pair_round_trips_with_its_identity_and_checks(route53: Any) -> None:
    zone_id = route53.create_hosted_zone(Name="example.com.", CallerReference="z")["HostedZone"][
        "Id"
    ].split("/")[-1]
    checks = Route53HealthChecks(route53)
    spec = HealthCheckSpec("HTTP", LB1, 80, "/health")
    hc1 = checks.create(spec, caller_reference("demo", "i-0123456789abcdef0", NOW), [])
    primary = Record(ACTIVE, "A", 60, (LB1,), "primary", "PRIMARY", hc1)
    secondary = Record(ACTIVE, "A", 60, (LB2,), "secondary", "SECONDARY", None)
    records = Route53Records(route53, zone_id)

    records.change([RecordChange("CREATE", primary), RecordChange("CREATE", secondary)], "pair")

    assert set(records.read(DOMAIN)) == {primary, secondary}


def test_a_check_is_made_with_the_interval_and_threshold_of_the_rules(route53: Any) -> None:
    """LBF_ROUTE53_INTERVAL=10 (Route 53's fast checks) and LBF_FALL=2 reach Route 53, and a
    check read back carries them, so that a check of another interval is known as one."""
    checks = Route53HealthChecks(route53)
    fast = HealthCheckSpec("HTTP", LB1, 80, "/health", request_interval=10, failure_threshold=2)

    health_check_id = checks.create(fast, caller_reference("demo", "i-0123456789abcdef0", NOW), [])

    config = route53.get_health_check(HealthCheckId=health_check_id)["HealthCheck"]
    assert (
        config["HealthCheckConfig"]["RequestInterval"],
        config["HealthCheckConfig"]["FailureThreshold"],
    ) == (10, 2)
    [read] = checks.read("demo")
    assert read.spec == fast


def test_a_swap_of_the_pair_is_one_batch_whose_deletes_name_every_field() -> None:
    """Pinned with the Stubber because moto cannot prove it: moto checks a DELETE against past
    changes rather than the current record, accepts a plain record beside a failover pair, and
    does not apply a batch atomically. Route 53 deletes a failover record only when SetIdentifier,
    Failover, HealthCheckId, TTL and every value match, so each DELETE must carry them all."""
    rules = settings(dns_failover="route53", domain=DOMAIN).rules.records
    current = read_active_name(
        [
            Record(ACTIVE, "A", 300, (LB1,), "primary", "PRIMARY", "hc-1"),
            Record(ACTIVE, "A", 300, (LB2,), "secondary", "SECONDARY", "hc-2"),
        ],
        rules,
    )
    wanted = [
        pair_record(rules, PRIMARY, (LB2,), "hc-2"),
        pair_record(rules, SECONDARY, (LB2,), None),
    ]
    client: Any = boto3.session.Session().client(  # type: ignore[call-overload]
        "route53",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=clients.CONFIG,
    )
    stubber = Stubber(client)

    def record_set(values: str, ttl: int, role: str, check: str | None) -> dict[str, Any]:
        found: dict[str, Any] = {
            "Name": f"{ACTIVE}.",
            "Type": "A",
            "TTL": ttl,
            "ResourceRecords": [{"Value": values}],
            "SetIdentifier": role.lower(),
            "Failover": role,
        }
        if check is not None:
            found["HealthCheckId"] = check
        return found

    stubber.add_response(
        "change_resource_record_sets",
        {
            "ChangeInfo": {
                "Id": "/change/C1",
                "Status": "PENDING",
                "SubmittedAt": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
            }
        },
        {
            "HostedZoneId": "Z123",
            "ChangeBatch": {
                "Comment": "swap",
                "Changes": [
                    {
                        "Action": "DELETE",
                        "ResourceRecordSet": record_set(LB1, 300, PRIMARY, "hc-1"),
                    },
                    {
                        "Action": "DELETE",
                        "ResourceRecordSet": record_set(LB2, 300, SECONDARY, "hc-2"),
                    },
                    {"Action": "CREATE", "ResourceRecordSet": record_set(LB2, 60, PRIMARY, "hc-2")},
                    {"Action": "CREATE", "ResourceRecordSet": record_set(LB2, 60, SECONDARY, None)},
                ],
            },
        },
    )

    with stubber:
        Route53Records(client, "Z123").change(swap_batch(current, wanted), "swap")
        stubber.assert_no_pending_responses()


def test_the_stand_ins_moto_takes_the_pairs_batches_as_route53_does(route53: Any) -> None:
    """The local stand-in runs moto with standin/moto_fixes: a plain record becomes the pair,
    PRIMARY swaps while SECONDARY is restated unchanged in the same batch, swaps back to a value
    it held before, and the pair becomes the plain record again. moto alone refuses the restated
    record's CREATE (its journal holds an equal one) and the move back."""
    zone_id = route53.create_hosted_zone(Name="example.com.", CallerReference="z")["HostedZone"][
        "Id"
    ].split("/")[-1]
    records = Route53Records(route53, zone_id)
    rules = settings(dns_failover="route53", domain=DOMAIN).rules.records
    plain = Record(ACTIVE, "A", 60, (LB1,))
    on_lb1 = [
        pair_record(rules, PRIMARY, (LB1,), None),
        pair_record(rules, SECONDARY, (LB2,), None),
    ]
    on_lb2 = [
        pair_record(rules, PRIMARY, (LB2,), None),
        pair_record(rules, SECONDARY, (LB2,), None),
    ]

    with route53_moves_back():
        for wanted in (on_lb1, on_lb2, on_lb1, on_lb2, [plain]):
            current = read_active_name(records.read(DOMAIN), rules)
            records.change(swap_batch(current, wanted), "pair")
            assert set(records.read(DOMAIN)) == set(wanted)


def test_the_real_services_have_the_health_check_adapter_for_the_pair_alone(route53: Any) -> None:
    """LBF_DNS_FAILOVER=route53 with LBF_ROUTE53_HEALTH_CHECKS off: the pair is bound to the
    checks, so the real services keep them (without the adapter no check would ever be made)."""
    del route53
    base = {"LBF_CLUSTER": "demo", "LBF_DOMAIN": "prod.example.com", "LBF_HOSTED_ZONE_ID": "Z123"}
    pair = settings(base, lb_address="public", dns_failover="route53")
    assert not pair.route53_health_checks
    assert isinstance(aws_services(pair).health_checks, Route53HealthChecks)


def test_the_stand_ins_moto_takes_the_swap_that_drops_a_records_check(route53: Any) -> None:
    """PRIMARY dies and SECONDARY takes over alone: SECONDARY keeps its values and loses its
    check. The stand-in's moto (standin.moto_fixes) must still find the CREATE the DELETE is
    matched against, as Route 53 matches the record itself."""
    zone_id = route53.create_hosted_zone(Name="example.com.", CallerReference="z")["HostedZone"][
        "Id"
    ].split("/")[-1]
    records = Route53Records(route53, zone_id)
    rules = settings(dns_failover="route53", domain=DOMAIN).rules.records
    first = [
        pair_record(rules, PRIMARY, (LB1,), "hc-1"),
        pair_record(rules, SECONDARY, (LB1,), None),
    ]
    bound = [
        pair_record(rules, PRIMARY, (LB1,), "hc-1"),
        pair_record(rules, SECONDARY, (LB2,), "hc-2"),
    ]
    alone = [
        pair_record(rules, PRIMARY, (LB2,), "hc-2"),
        pair_record(rules, SECONDARY, (LB2,), None),
    ]
    with route53_moves_back():
        records.change([RecordChange("CREATE", r) for r in first], "made")
        for before, after in ((first, bound), (bound, alone)):
            current = read_active_name(records.read(DOMAIN), rules)
            assert set(current.records) == set(before)
            records.change(swap_batch(current, after), "swapped")

    assert set(records.read(DOMAIN)) == set(alone)
