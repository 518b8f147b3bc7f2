"""The AWS adapters against moto, and against botocore's Stubber where moto cannot tell.

moto is used where its emulation is faithful enough to prove the behaviour: listing and filtering
records and instances, tags, parameters, SNS delivery. The Stubber pins the exact request where
moto is lax or wrong: Route 53 change batches (moto accepts a stale DELETE and does not apply a
batch atomically), Run Command (moto reports Success for everything, ignores instance targeting,
implements neither ListCommands' Filters nor its pagination), and pages moto never produces.

Every address here is a loopback or documentation address (192.0.2.0/24, 198.51.100.0/24,
203.0.113.0/24); nothing is ever sent to one.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber
from moto import mock_aws

from chalicelib.adapters import clients
from chalicelib.adapters.ec2 import Ec2Inventory
from chalicelib.adapters.notify import SnsNotifier
from chalicelib.adapters.route53 import Route53Records
from chalicelib.adapters.ssm import SsmParameters, SsmPushes
from chalicelib.core import dns
from chalicelib.core.model import Push, Record
from chalicelib.errors import AwsError, ChangeRejected, DomainNotOwned, ZoneNotFound
from tests.kit.aws_env import use_fake_credentials
from tests.kit.settings import settings

REGION = "us-east-1"
DOMAIN = "prod.example.com"
ZONE = "Z0123456789ABC"
DOCUMENT = "LbFailover-UpdateBackends"
CHECKSUM = "9c36f17b34811cb92575cbe173e6fe4b2fb2fd6861c7e3555411711bfc456bc1"
SINCE = 1_700_000_000.0  # 2023-11-14T22:13:20Z
SINCE_TEXT = "2023-11-14T22:13:20Z"


def uid(number: int) -> str:
    """A command id in SSM's form (a UUID, 36 characters; the Stubber checks the length)."""
    return f"00000000-0000-0000-0000-{number:012d}"


COMMAND_ID = uid(99)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto for every boto3 client made inside the test, with fake credentials.

    An AWS_ENDPOINT_URL left behind by an end-to-end test would send clients to a stopped moto
    server instead of the in-process mock, so every AWS_ variable is cleared first.
    """
    use_fake_credentials(monkeypatch, REGION, clear=True)
    with mock_aws():
        yield
    clients.forget_clients()


def stubbed(service: str) -> tuple[Any, Stubber]:
    """A client that never leaves the process: the Stubber answers before any request is sent."""
    client: Any = boto3.session.Session().client(  # type: ignore[call-overload]
        service,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=clients.CONFIG,
    )
    return client, Stubber(client)


def count_calls(client: Any, operation: str) -> list[dict[str, Any]]:
    """The parameters of every `operation` the client makes, recorded by botocore's own events."""
    seen: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        seen.append(params)

    client.meta.events.register(f"provide-client-params.*.{operation}", record)
    return seen


# --- Route 53 -----------------------------------------------------------------------------------


def a_set(name: str, *values: str, ttl: int = 60, kind: str = "A") -> dict[str, Any]:
    return {
        "Name": name,
        "Type": kind,
        "TTL": ttl,
        "ResourceRecords": [{"Value": v} for v in values],
    }


def create_all(route53: Any, zone_id: str, record_sets: list[dict[str, Any]]) -> None:
    route53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [{"Action": "CREATE", "ResourceRecordSet": rs} for rs in record_sets]
        },
    )


def moto_zone(name: str = "example.com") -> tuple[Any, str]:
    route53 = clients.client("route53")
    zone = route53.create_hosted_zone(Name=name + ".", CallerReference=name)
    return route53, zone["HostedZone"]["Id"].split("/")[-1]


def test_read_returns_every_a_and_txt_record_below_the_domain_across_pages(aws: None) -> None:
    route53, zone_id = moto_zone()
    hosts = [f"lb{n}.{DOMAIN}" for n in range(1, 321)]
    # More than moto's (and Route 53's) 300 record sets per page, so the read needs two pages.
    create_all(
        route53,
        zone_id,
        [a_set(h + ".", f"127.0.{n // 200}.{n % 200 + 1}") for n, h in enumerate(hosts)],
    )
    create_all(
        route53,
        zone_id,
        [
            a_set(DOMAIN + ".", "192.0.2.1"),  # the domain itself is "at or below"
            a_set(f"_lbf.{DOMAIN}.", '"lb1"', '"lb2"', kind="TXT"),
            a_set(f"deep.lb1.{DOMAIN}.", "192.0.2.2"),
            # Not the controller's business: other types under the domain ...
            a_set(f"www.{DOMAIN}.", "lb.prod.example.com", kind="CNAME"),
            a_set(f"mail.{DOMAIN}.", "10 mx.example.net", kind="MX"),
            # ... and names outside it, before and after it in Route 53's order. (No sibling with
            # a character below "." such as prod-a.example.com: Route 53 sorts "com.example.prod-a."
            # before the start name "com.example.prod.", but moto compares names without the
            # trailing dot, lists prod-a between the domain and its records, and the read stops
            # there. That is moto's order, not Route 53's.)
            a_set("example.com.", "192.0.2.3"),
            a_set("a.example.com.", "192.0.2.4"),
            a_set("xprod.example.com.", "192.0.2.5"),
            a_set("lb1.xprod.example.com.", "192.0.2.6"),
            a_set("www.example.com.", "192.0.2.7"),
        ],
    )
    listed = count_calls(route53, "ListResourceRecordSets")

    records = Route53Records(route53, zone_id).read(DOMAIN)

    assert len(listed) >= 2, "the records did not span two pages: the test proves nothing"
    names = [r.name for r in records]
    assert len(names) == len(set(names)), "a record was read twice across the page boundary"
    assert set(names) == {*hosts, DOMAIN, f"_lbf.{DOMAIN}", f"deep.lb1.{DOMAIN}"}
    by_name = {(r.name, r.type): r for r in records}
    assert by_name[(f"_lbf.{DOMAIN}", "TXT")] == Record(
        f"_lbf.{DOMAIN}", "TXT", 60, ('"lb1"', '"lb2"')
    )
    assert by_name[(f"lb1.{DOMAIN}", "A")] == Record(f"lb1.{DOMAIN}", "A", 60, ("127.0.0.1",))
    assert by_name[(f"lb320.{DOMAIN}", "A")].values == ("127.0.1.120",)
    assert all(not r.name.endswith(".") for r in records)


def test_read_of_the_zone_apex_skips_ns_and_soa(aws: None) -> None:
    route53, zone_id = moto_zone()
    create_all(
        route53,
        zone_id,
        [a_set("lb1.example.com.", "192.0.2.1"), a_set("_lbf.example.com.", '"lb1"', kind="TXT")],
    )

    records = Route53Records(route53, zone_id).read("example.com")

    assert {(r.name, r.type) for r in records} == {
        ("lb1.example.com", "A"),
        ("_lbf.example.com", "TXT"),
    }


def test_read_follows_route53_pages_and_stops_at_the_first_name_outside_the_domain() -> None:
    """Real Route 53 pages, lower-cased by the adapter; reading stops where the domain ends.

    Route 53 lists in DNS order, so a name outside the domain after its records means the rest of
    the zone is outside too: reading on would cost requests (5 per second per account) for nothing.
    The Stubber fails the test if a third page were requested.
    """
    client, stubber = stubbed("route53")
    first = {
        "HostedZoneId": ZONE,
        "StartRecordName": f"{DOMAIN}.",
    }
    stubber.add_response(
        "list_resource_record_sets",
        {
            "ResourceRecordSets": [
                a_set(f"{DOMAIN}.", "192.0.2.1"),
                a_set(f"_lbf.{DOMAIN}.", '"lb"', '"lb1"', kind="TXT"),
                a_set("LB.Prod.Example.COM.", "192.0.2.11"),
            ],
            "IsTruncated": True,
            "NextRecordName": f"lb1.{DOMAIN}.",
            "NextRecordType": "A",
            "MaxItems": "3",
        },
        first,
    )
    stubber.add_response(
        "list_resource_record_sets",
        {
            "ResourceRecordSets": [
                a_set(f"lb1.{DOMAIN}.", "192.0.2.11"),
                # An alias has no values of its own: not a record the controller can own.
                {
                    "Name": f"cdn.{DOMAIN}.",
                    "Type": "A",
                    "AliasTarget": {
                        "HostedZoneId": "Z2FDTNDATAQYW2",
                        "DNSName": "d111111abcdef8.cloudfront.net.",
                        "EvaluateTargetHealth": False,
                    },
                },
                a_set("xprod.example.com.", "192.0.2.5"),
            ],
            "IsTruncated": True,
            "NextRecordName": "zz.example.com.",
            "NextRecordType": "A",
            "MaxItems": "3",
        },
        first | {"StartRecordName": f"lb1.{DOMAIN}.", "StartRecordType": "A"},
    )

    with stubber:
        records = Route53Records(client, ZONE).read(DOMAIN)
        stubber.assert_no_pending_responses()

    assert records == (
        Record(DOMAIN, "A", 60, ("192.0.2.1",)),
        Record(f"_lbf.{DOMAIN}", "TXT", 60, ('"lb"', '"lb1"')),
        Record(f"lb.{DOMAIN}", "A", 60, ("192.0.2.11",)),
        Record(f"lb1.{DOMAIN}", "A", 60, ("192.0.2.11",)),
    )


def test_change_then_read_round_trips_names_against_moto(aws: None) -> None:
    route53, zone_id = moto_zone()
    records = Route53Records(route53, zone_id)
    created = Record(f"lb1.{DOMAIN}", "A", 60, ("127.0.0.11",))

    change_id = records.change([dns.RecordChange("CREATE", created)], "lbf test")

    assert records.read(DOMAIN) == (created,)
    assert records.change_status(change_id) == "INSYNC"


def test_active_record_change_is_one_compare_and_swap_batch() -> None:
    """DELETE of exactly the record read, CREATE of the new one, in one request; never UPSERT.

    Pinned with the Stubber because moto cannot prove it: moto checks a DELETE against past
    changes rather than the current record (a stale DELETE is accepted) and does not apply a batch
    atomically, so an UPSERT or a split delete/create would pass against moto as well.
    """
    name = f"lb.{DOMAIN}"
    # Two values and a non-default TTL: Route 53 deletes only on an exact match of all of them.
    current = Record(name, "A", 300, ("192.0.2.11", "192.0.2.12"))
    changes = dns.active_change(current, ["198.51.100.2"], 60, name)
    comment = "moved off lb1 (stopped) to lb2 " + "x" * 300
    client, stubber = stubbed("route53")
    stubber.add_response(
        "change_resource_record_sets",
        {
            "ChangeInfo": {
                "Id": "/change/C2682N5HXP0BZ4",
                "Status": "PENDING",
                "SubmittedAt": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
            }
        },
        {
            "HostedZoneId": ZONE,
            "ChangeBatch": {
                # Route 53 refuses a comment over 256 characters: it is cut, not sent whole.
                "Comment": comment[:256],
                "Changes": [
                    {
                        "Action": "DELETE",
                        "ResourceRecordSet": {
                            "Name": "lb.prod.example.com.",
                            "Type": "A",
                            "TTL": 300,
                            "ResourceRecords": [{"Value": "192.0.2.11"}, {"Value": "192.0.2.12"}],
                        },
                    },
                    {
                        "Action": "CREATE",
                        "ResourceRecordSet": {
                            "Name": "lb.prod.example.com.",
                            "Type": "A",
                            "TTL": 60,
                            "ResourceRecords": [{"Value": "198.51.100.2"}],
                        },
                    },
                ],
            },
        },
    )

    with stubber:
        change_id = Route53Records(client, ZONE).change(changes, comment)
        stubber.assert_no_pending_responses()

    assert change_id == "/change/C2682N5HXP0BZ4"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            "InvalidChangeBatch",
            "[Tried to delete resource record set [name='lb.prod.example.com.', type='A'] but the "
            "values provided do not match the current values]",
        ),
        # moto's answer to a DELETE that matches nothing: another code, a message naming nothing.
        (
            "InvalidInput",
            "Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and "
            "ResourceRecords], or TrafficPolicyInstanceId], but found none in Change with "
            "[Action=DELETE, Name=lb.prod.example.com., Type=A, SetIdentifier=null]",
        ),
    ],
    ids=["aws", "moto"],
)
def test_a_refused_change_batch_is_rejected_whatever_its_code_says(code: str, message: str) -> None:
    """Rejected, not stale: which of the two it is, only the job's re-read can tell."""
    current = Record(f"lb.{DOMAIN}", "A", 60, ("192.0.2.11",))
    client, stubber = stubbed("route53")
    stubber.add_client_error(
        "change_resource_record_sets",
        service_error_code=code,
        service_message=message,
        http_status_code=400,
    )

    with stubber, pytest.raises(ChangeRejected) as caught:
        Route53Records(client, ZONE).change(
            dns.active_change(current, ["198.51.100.2"], 60, current.name), "swap"
        )

    assert caught.value.code == code
    assert caught.value.operation == "ChangeResourceRecordSets"
    assert message in str(caught.value)
    assert isinstance(caught.value.__cause__, ClientError)


def test_invalid_input_to_a_read_is_an_error_not_a_rejected_change() -> None:
    client, stubber = stubbed("route53")
    stubber.add_client_error(
        "list_resource_record_sets",
        service_error_code="InvalidInput",
        service_message="The input is not valid",
        http_status_code=400,
    )

    with stubber, pytest.raises(AwsError) as caught:
        Route53Records(client, ZONE).read(DOMAIN)

    assert not isinstance(caught.value, ChangeRejected)
    assert caught.value.code == "InvalidInput"


@pytest.mark.parametrize("code", ["Throttling", "PriorRequestNotComplete", "AccessDenied"])
def test_other_route53_errors_are_not_a_rejected_change(code: str) -> None:
    """A throttled or refused change says nothing about the record: no re-read and re-plan."""
    current = Record(f"lb.{DOMAIN}", "A", 60, ("192.0.2.11",))
    client, stubber = stubbed("route53")
    stubber.add_client_error(
        "change_resource_record_sets", service_error_code=code, http_status_code=400
    )

    with stubber, pytest.raises(AwsError) as caught:
        Route53Records(client, ZONE).change(
            dns.active_change(current, ["198.51.100.2"], 60, current.name), "swap"
        )

    assert not isinstance(caught.value, ChangeRejected)
    assert (caught.value.service, caught.value.code) == ("route53", code)


def test_a_failed_record_read_is_an_aws_error() -> None:
    client, stubber = stubbed("route53")
    stubber.add_client_error(
        "list_resource_record_sets", service_error_code="AccessDenied", http_status_code=403
    )

    with stubber, pytest.raises(AwsError) as caught:
        Route53Records(client, ZONE).read(DOMAIN)

    assert (caught.value.operation, caught.value.code) == ("ListResourceRecordSets", "AccessDenied")


def test_a_zone_that_does_not_exist_is_a_configuration_error_naming_the_variable() -> None:
    client, stubber = stubbed("route53")
    stubber.add_client_error(
        "list_resource_record_sets", service_error_code="NoSuchHostedZone", http_status_code=404
    )

    with stubber, pytest.raises(ZoneNotFound) as caught:
        Route53Records(client, ZONE).read(DOMAIN)

    assert str(caught.value).startswith(f"LBF_HOSTED_ZONE_ID: Route 53 has no hosted zone {ZONE}")
    assert isinstance(caught.value, DomainNotOwned)  # refused, exit 2, like another's domain


# --- EC2 ----------------------------------------------------------------------------------------


def moto_vpc(ec2: Any) -> tuple[str, str]:
    """A loopback VPC (as the local stand-in uses), so every instance address is 127.x."""
    vpc = ec2.create_vpc(CidrBlock="127.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="127.0.1.0/24")["Subnet"]["SubnetId"]
    ec2.modify_subnet_attribute(SubnetId=subnet, MapPublicIpOnLaunch={"Value": True})
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    return subnet, image


def launch(ec2: Any, subnet: str, image: str, address: str, tags: dict[str, str]) -> str:
    reservation = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        SubnetId=subnet,
        PrivateIpAddress=address,
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
            }
        ],
    )
    return str(reservation["Instances"][0]["InstanceId"])


def test_describe_finds_only_the_clusters_instances_in_every_state(aws: None) -> None:
    ec2 = clients.client("ec2")
    subnet, image = moto_vpc(ec2)
    lb1 = launch(ec2, subnet, image, "127.0.1.11", {"lbf:cluster": "prod", "lbf:role": "lb"})
    lb2 = launch(ec2, subnet, image, "127.0.1.12", {"lbf:cluster": "prod", "lbf:role": "lb"})
    web = launch(
        ec2,
        subnet,
        image,
        "127.0.1.21",
        {"lbf:cluster": "prod", "lbf:role": "web", "lbf:port": "8080"},
    )
    launch(ec2, subnet, image, "127.0.1.31", {"lbf:cluster": "staging", "lbf:role": "lb"})
    launch(ec2, subnet, image, "127.0.1.32", {"lbf:cluster": "prod-old", "lbf:role": "lb"})
    launch(ec2, subnet, image, "127.0.1.33", {"Name": "unmanaged"})
    ec2.stop_instances(InstanceIds=[lb2])

    found = {raw.instance_id: raw for raw in Ec2Inventory(ec2).describe("prod")}

    assert set(found) == {lb1, lb2, web}
    assert found[lb1].state == "running"
    assert found[lb2].state == "stopped"
    assert found[lb1].private_ip == "127.0.1.11"
    assert found[lb1].public_ip is not None  # moto invents one for a running instance
    assert found[lb2].public_ip is None  # a stopped instance has no public address
    assert dict(found[web].tags) == {"lbf:cluster": "prod", "lbf:role": "web", "lbf:port": "8080"}
    assert found[lb1].launch_time > 0


def test_describe_other_clusters_finds_every_other_clusters_instance_and_no_untagged_one(
    aws: None,
) -> None:
    """Read only to judge a TXT that names no cluster: a tag-key filter, this cluster's dropped."""
    ec2 = clients.client("ec2")
    subnet, image = moto_vpc(ec2)
    launch(ec2, subnet, image, "127.0.1.11", {"lbf:cluster": "prod", "lbf:role": "lb"})
    staging = launch(ec2, subnet, image, "127.0.1.31", {"lbf:cluster": "staging"})
    old = launch(ec2, subnet, image, "127.0.1.32", {"lbf:cluster": "prod-old", "lbf:role": "lb"})
    launch(ec2, subnet, image, "127.0.1.33", {"Name": "unmanaged"})
    ec2.stop_instances(InstanceIds=[old])

    found = {raw.instance_id: raw for raw in Ec2Inventory(ec2).describe_other_clusters("prod")}

    assert set(found) == {staging, old}
    assert found[old].private_ip == "127.0.1.32"  # a stopped instance keeps its private IP


def test_describe_reads_every_page() -> None:
    """moto never returns a NextToken for a few instances: the pages are faked with the Stubber."""
    client, stubber = stubbed("ec2")
    launched = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    request = {
        "Filters": [{"Name": "tag:lbf:cluster", "Values": ["prod"]}],
        "MaxResults": 500,
    }

    def instance(instance_id: str, state: str, **extra: Any) -> dict[str, Any]:
        return {
            "InstanceId": instance_id,
            "State": {"Name": state, "Code": 16},
            "LaunchTime": launched,
            "Tags": [{"Key": "lbf:cluster", "Value": "prod"}, {"Key": "lbf:role", "Value": "lb"}],
            **extra,
        }

    stubber.add_response(
        "describe_instances",
        {
            "Reservations": [
                {
                    "Instances": [
                        instance(
                            "i-0000000000000000a",
                            "running",
                            PrivateIpAddress="127.0.1.11",
                            PublicIpAddress="203.0.113.11",
                        )
                    ]
                }
            ],
            "NextToken": "page-2",
        },
        request,
    )
    stubber.add_response(
        "describe_instances",
        {
            "Reservations": [
                {"Instances": [instance("i-0000000000000000b", "stopped")]},
                {"Instances": [instance("i-0000000000000000c", "pending")]},
            ]
        },
        request | {"NextToken": "page-2"},
    )

    with stubber:
        found = Ec2Inventory(client).describe("prod")
        stubber.assert_no_pending_responses()

    assert [(r.instance_id, r.state, r.private_ip, r.public_ip) for r in found] == [
        ("i-0000000000000000a", "running", "127.0.1.11", "203.0.113.11"),
        ("i-0000000000000000b", "stopped", None, None),
        ("i-0000000000000000c", "pending", None, None),
    ]
    assert found[0].launch_time == launched.timestamp()


def test_create_tags_writes_exactly_the_given_tags_on_the_given_instances(aws: None) -> None:
    ec2 = clients.client("ec2")
    subnet, image = moto_vpc(ec2)
    base = {"lbf:cluster": "prod", "lbf:role": "lb", "lbf:health": "unhealthy"}
    lb1 = launch(ec2, subnet, image, "127.0.1.11", base)
    lb2 = launch(ec2, subnet, image, "127.0.1.12", base)
    other = launch(ec2, subnet, image, "127.0.1.13", base)
    inventory = Ec2Inventory(ec2)

    inventory.create_tags([lb1, lb2], [("lbf:health", "healthy"), ("lbf:probe", "ok:2")])

    tags = {raw.instance_id: dict(raw.tags) for raw in inventory.describe("prod")}
    written = base | {"lbf:health": "healthy", "lbf:probe": "ok:2"}
    assert tags == {lb1: written, lb2: written, other: base}


def test_the_elastic_ip_holder_is_read_from_describe_addresses(aws: None) -> None:
    ec2 = clients.client("ec2")
    subnet, image = moto_vpc(ec2)
    lb1 = launch(ec2, subnet, image, "127.0.1.11", {"lbf:cluster": "prod"})
    lb2 = launch(ec2, subnet, image, "127.0.1.12", {"lbf:cluster": "prod"})
    allocation = ec2.allocate_address(Domain="vpc")
    inventory = Ec2Inventory(ec2)

    holder, public_ip = inventory.address_holder(allocation["AllocationId"])
    # AWS leaves InstanceId out for an unassociated address; moto sends "". Either means nobody.
    assert not holder
    assert public_ip == allocation["PublicIp"]
    inventory.associate_address(allocation["AllocationId"], lb1)
    assert inventory.address_holder(allocation["AllocationId"]) == (lb1, allocation["PublicIp"])
    # Moving it off an instance that holds it needs AllowReassociation.
    inventory.associate_address(allocation["AllocationId"], lb2)
    assert inventory.address_holder(allocation["AllocationId"]) == (lb2, allocation["PublicIp"])


# --- SSM Parameter Store ------------------------------------------------------------------------


def test_parameters_are_read_in_one_call_and_missing_ones_are_absent(aws: None) -> None:
    ssm = clients.client("ssm")
    parameters = SsmParameters(ssm)
    parameters.put("/lbf/prod/backends", "127.0.1.21:80 127.0.1.22:80")
    parameters.put("/lbf/prod/lbs", "127.0.0.11 127.0.0.12")
    calls = count_calls(ssm, "GetParameters")

    values = parameters.read(
        ["/lbf/prod/backends", "/lbf/prod/lbs", "/lbf/prod/paused", "/lbf/prod/notices"]
    )

    assert values == {
        "/lbf/prod/backends": "127.0.1.21:80 127.0.1.22:80",
        "/lbf/prod/lbs": "127.0.0.11 127.0.0.12",
    }
    assert len(calls) == 1


def test_put_overwrites_and_a_long_list_is_stored_whole(aws: None) -> None:
    ssm = clients.client("ssm")
    parameters = SsmParameters(ssm)
    parameters.put("/lbf/prod/backends", "127.0.1.21:80")
    # Longer than a standard parameter's 4 KB: intelligent tiering makes it an advanced one.
    # (moto accepts any length in any tier, so this proves moto takes the Tier, not AWS's limits.)
    long_list = " ".join(f"127.0.{n // 250}.{n % 250 + 1}:8080" for n in range(400))
    assert len(long_list) > 4096

    parameters.put("/lbf/prod/backends", long_list)

    assert parameters.read(["/lbf/prod/backends"]) == {"/lbf/prod/backends": long_list}


def test_put_asks_for_intelligent_tiering() -> None:
    """moto stores any length in any tier, so only the request shows the tier that AWS applies."""
    client, stubber = stubbed("ssm")
    stubber.add_response(
        "put_parameter",
        {"Version": 2, "Tier": "Advanced"},
        {
            "Name": "/lbf/prod/backends",
            "Value": "127.0.1.21:80",
            "Type": "String",
            "Overwrite": True,
            "Tier": "Intelligent-Tiering",
        },
    )

    with stubber:
        SsmParameters(client).put("/lbf/prod/backends", "127.0.1.21:80")
        stubber.assert_no_pending_responses()


def test_a_refused_parameter_write_is_an_aws_error() -> None:
    """A list too long even for an advanced parameter fails loudly (SPEC: never truncated)."""
    client, stubber = stubbed("ssm")
    stubber.add_client_error(
        "put_parameter", service_error_code="ValidationException", http_status_code=400
    )

    with stubber, pytest.raises(AwsError) as caught:
        SsmParameters(client).put("/lbf/prod/backends", "x" * 9000)

    assert (caught.value.service, caught.value.code) == ("ssm", "ValidationException")


# --- SSM Run Command ----------------------------------------------------------------------------


def command_summary(
    command_id: str,
    *,
    document: str = DOCUMENT,
    comment: str = f"lbf-backends {CHECKSUM}",
    instances: tuple[str, ...] = ("i-0000000000000000a",),
    requested: float = SINCE + 60,
    status: str = "Success",
) -> dict[str, Any]:
    return {
        "CommandId": command_id,
        "DocumentName": document,
        "Comment": comment,
        "InstanceIds": list(instances),
        "RequestedDateTime": dt.datetime.fromtimestamp(requested, tz=dt.UTC),
        "Status": status,
    }


def test_send_pushes_one_list_to_exactly_one_instance() -> None:
    """moto runs any command on any instance and ignores the targeting: pinned with the Stubber."""
    backends = "127.0.1.21:80 127.0.1.22:80 [::1]:8080"
    client, stubber = stubbed("ssm")
    stubber.add_response(
        "send_command",
        {"Command": {"CommandId": "0b7ab0e1-1111-2222-3333-444455556666", "Status": "Pending"}},
        {
            "InstanceIds": ["i-0000000000000000a"],
            "DocumentName": DOCUMENT,
            "Comment": f"lbf-backends {CHECKSUM}",
            "Parameters": {"Backends": [backends], "Checksum": [CHECKSUM]},
            "TimeoutSeconds": 600,
        },
    )

    with stubber:
        command = SsmPushes(client, DOCUMENT).send(
            "i-0000000000000000a", backends, CHECKSUM, now=SINCE
        )
        stubber.assert_no_pending_responses()

    assert command == Push(
        command_id="0b7ab0e1-1111-2222-3333-444455556666",
        instance_id="i-0000000000000000a",
        checksum=CHECKSUM,
        status="Pending",
        requested_at=SINCE,
    )


def test_send_asks_ssm_to_put_the_output_into_the_clusters_log_group() -> None:
    """The exact request, pinned with the Stubber: moto accepts CloudWatchOutputConfig and
    ignores it, so only the request shows that the LB's output reaches the group."""
    backends = "127.0.1.21:80"
    client, stubber = stubbed("ssm")
    stubber.add_response(
        "send_command",
        {"Command": {"CommandId": COMMAND_ID, "Status": "Pending"}},
        {
            "InstanceIds": ["i-0000000000000000a"],
            "DocumentName": DOCUMENT,
            "Comment": f"lbf-backends {CHECKSUM}",
            "Parameters": {"Backends": [backends], "Checksum": [CHECKSUM]},
            "TimeoutSeconds": 600,
            "CloudWatchOutputConfig": {
                "CloudWatchLogGroupName": "/lbf/web/pushes",
                "CloudWatchOutputEnabled": True,
            },
        },
    )

    with stubber:
        SsmPushes(client, DOCUMENT, log_group="/lbf/web/pushes").send(
            "i-0000000000000000a", backends, CHECKSUM, now=SINCE
        )
        stubber.assert_no_pending_responses()


def test_the_controller_sends_pushes_to_the_log_group_of_its_cluster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chalicelib.services import aws_services

    use_fake_credentials(monkeypatch)
    config = settings(cluster="web", domain="example.com", hosted_zone_id="Z1")
    pushes = aws_services(config).pushes
    assert isinstance(pushes, SsmPushes)
    assert pushes._log_group == config.push_log_group == "/lbf/web/pushes"


@pytest.mark.parametrize("status", ["Success", "Failed", "InProgress", "TimedOut", "Delayed"])
def test_status_passes_ssm_statuses_through(status: str) -> None:
    client, stubber = stubbed("ssm")
    stubber.add_response(
        "get_command_invocation",
        {"CommandId": COMMAND_ID, "InstanceId": "i-0000000000000000a", "Status": status},
        {"CommandId": COMMAND_ID, "InstanceId": "i-0000000000000000a"},
    )
    sent = Push(COMMAND_ID, "i-0000000000000000a", CHECKSUM, "Pending", SINCE)

    with stubber:
        assert SsmPushes(client, DOCUMENT).status(sent) == status


def test_status_right_after_sending_is_pending_not_an_error() -> None:
    """GetCommandInvocation may not know a command it just accepted (InvocationDoesNotExist)."""
    client, stubber = stubbed("ssm")
    stubber.add_client_error("get_command_invocation", service_error_code="InvocationDoesNotExist")
    sent = Push(COMMAND_ID, "i-0000000000000000a", CHECKSUM, "Pending", SINCE)

    with stubber:
        assert SsmPushes(client, DOCUMENT).status(sent) == "Pending"


def test_status_of_an_unknown_command_is_an_error() -> None:
    client, stubber = stubbed("ssm")
    stubber.add_client_error("get_command_invocation", service_error_code="InvalidCommandId")
    sent = Push(COMMAND_ID, "i-0000000000000000a", CHECKSUM, "Pending", SINCE)

    with stubber, pytest.raises(AwsError) as caught:
        SsmPushes(client, DOCUMENT).status(sent)

    assert caught.value.code == "InvalidCommandId"


def test_recent_keeps_only_this_documents_single_instance_pushes_since_then() -> None:
    """moto ignores ListCommands' Filters and never pages: the pages are faked with the Stubber."""
    client, stubber = stubbed("ssm")
    request = {
        "Filters": [
            {"key": "DocumentName", "value": DOCUMENT},
            {"key": "InvokedAfter", "value": SINCE_TEXT},
        ]
    }
    stubber.add_response(
        "list_commands",
        {
            "Commands": [
                command_summary(uid(1), status="Success"),
                command_summary(uid(2), document="AWS-RunShellScript"),
                command_summary(uid(3), comment=f"manual push {CHECKSUM}"),
                command_summary(uid(4), comment=""),
                command_summary(uid(5), instances=("i-0000000000000000a", "i-0000000000000000b")),
                command_summary(uid(6), requested=SINCE - 1),
            ],
            "NextToken": "page-2",
        },
        request,
    )
    stubber.add_response(
        "list_commands",
        {
            "Commands": [
                command_summary(
                    uid(7),
                    instances=("i-0000000000000000b",),
                    comment="lbf-backends abc123",
                    requested=SINCE,
                    status="InProgress",
                )
            ]
        },
        request | {"NextToken": "page-2"},
    )

    with stubber:
        found = SsmPushes(client, DOCUMENT).recent(since=SINCE)
        stubber.assert_no_pending_responses()

    assert found == [
        Push(uid(1), "i-0000000000000000a", CHECKSUM, "Success", SINCE + 60),
        Push(uid(7), "i-0000000000000000b", "abc123", "InProgress", SINCE),
    ]


# --- SNS ----------------------------------------------------------------------------------------


def test_publish_reaches_the_topics_subscribers_with_a_subject_cut_to_100(aws: None) -> None:
    sns = clients.client("sns")
    sqs: Any = boto3.session.Session().client("sqs")
    topic = sns.create_topic(Name="lb-failover-prod")["TopicArn"]
    queue = sqs.create_queue(QueueName="operators")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    # SNS refuses a subject of 100 characters or more (moto too): it is cut, the notice still goes.
    subject = "lb-failover prod " + "s" * 150

    SnsNotifier(sns, topic).publish(subject, "active record moved: moved off lb1 to lb2")

    received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert len(received) == 1
    body = json.loads(received[0]["Body"])
    assert body["Subject"] == subject[:100]
    assert body["Message"] == "active record moved: moved off lb1 to lb2"


def test_publish_to_a_missing_topic_is_an_aws_error(aws: None) -> None:
    sns = clients.client("sns")
    missing = f"arn:aws:sns:{REGION}:123456789012:no-such-topic"

    with pytest.raises(AwsError) as caught:
        SnsNotifier(sns, missing).publish("lb-failover prod", "hello")

    assert (caught.value.service, caught.value.operation) == ("sns", "Publish")


# --- clients ------------------------------------------------------------------------------------


def test_a_client_error_becomes_an_aws_error_naming_service_operation_and_code() -> None:
    error = ClientError(
        {"Error": {"Code": "UnauthorizedOperation", "Message": "You are not authorized"}},
        "DescribeInstances",
    )

    with pytest.raises(AwsError) as caught, clients.translated("ec2", "DescribeInstances"):
        raise error

    assert not isinstance(caught.value, ChangeRejected)
    assert (caught.value.service, caught.value.operation, caught.value.code) == (
        "ec2",
        "DescribeInstances",
        "UnauthorizedOperation",
    )
    assert "You are not authorized" in str(caught.value)
    assert caught.value.__cause__ is error


def test_a_connection_failure_becomes_an_aws_error() -> None:
    error = EndpointConnectionError(endpoint_url="https://ssm.us-east-1.amazonaws.com/")

    with pytest.raises(AwsError) as caught, clients.translated("ssm", "GetParameters"):
        raise error

    assert (caught.value.service, caught.value.operation, caught.value.code) == (
        "ssm",
        "GetParameters",
        "EndpointConnectionError",
    )
    assert caught.value.__cause__ is error


def test_other_exceptions_are_not_swallowed() -> None:
    with pytest.raises(KeyError), clients.translated("ssm", "GetParameters"):
        raise KeyError("Parameters")


def test_clients_use_standard_retries_and_explicit_timeouts(aws: None) -> None:
    # Lambda runs a minute-long schedule: botocore's 60 s default read timeout would eat it.
    config: Any = clients.CONFIG  # botocore-stubs declare no attributes on Config
    # botocore keeps max_attempts (retries) as total_max_attempts (the first call + retries).
    assert config.retries == {"mode": "standard", "total_max_attempts": 6}
    assert 0 < config.connect_timeout <= 5
    assert 0 < config.read_timeout <= 15

    made = clients.client("route53")

    assert made.meta.config.retries["mode"] == "standard"
    assert made.meta.config.connect_timeout == config.connect_timeout
    assert made.meta.config.read_timeout == config.read_timeout
    assert clients.client("route53") is made  # made once, shared: a new one costs 150-450 ms
    clients.forget_clients()
    assert clients.client("route53") is not made
