"""Where two rules meet: rejected and lost Route 53 changes, slow and refused pushes, notices.

Against the public entry point `jobs.reconcile` on the in-memory AWS of tests/kit/cloud.py, which is
faithful where moto is not: Route 53 there rejects a batch atomically with AWS's error code and
message (moto answers `InvalidInput` where AWS says `InvalidChangeBatch`, and enforces no CNAME
conflict at all); Parameter Store there refuses values over 8 KB and reports the tier past 4 KB
(moto enforces neither); SSM there lets a test decide each push's fate (moto's `send_command`
always succeeds, whatever the instance).
"""

from __future__ import annotations

import contextlib
import datetime
from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from chalicelib import jobs
from chalicelib.__main__ import main
from chalicelib.adapters.clients import CONFIG
from chalicelib.adapters.route53 import Route53Records
from chalicelib.adapters.ssm import SsmPushes
from chalicelib.core.backends import checksum
from chalicelib.core.model import Record
from chalicelib.errors import AwsError
from chalicelib.report import Report
from tests.kit.cloud import (
    FAKE_CLOUD_ENV,
    FAKE_DOMAIN,
    FakeCloud,
    Killed,
    kill_at_write,
    small_cluster,
)
from tests.kit.runs import scheduled, settle
from tests.kit.settings import environment, settings

DOMAIN = FAKE_DOMAIN
ACTIVE = f"lb.{DOMAIN}"
NOTICES = "/lbf/demo/notices"
LB1, LB2 = "127.0.0.11", "127.0.0.12"
WEBS = ("127.0.1.21", "127.0.1.22", "127.0.1.23")
NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


# ---------------------------------------------------------------------------------------------
# Notices stay within a standard-tier parameter and never storm.


def test_a_flood_of_skipped_instances_is_one_notice_and_fits_a_standard_parameter() -> None:
    cloud = small_cluster()
    for number in range(300):
        cloud.ec2.add("web", f"127.0.2.{number % 250}", tags={"lbf:port": "not-a-port"})
    config = settings(FAKE_CLOUD_ENV, probe_rounds="2")

    first = scheduled(cloud, config)
    assert not [e for e in first.errors if "notices" in e or "notified" in e], first.errors
    flood = [m for m in cloud.sns.messages if "skipped" in m]
    assert len(flood) == 1
    assert flood[0].startswith("300 conditions of kind skipped")
    assert all(len(m) <= 4096 for m in cloud.sns.messages)
    assert len(cloud.ssm.parameters[NOTICES]) <= 4096
    assert cloud.ssm.tiers[NOTICES] == "Standard"

    sent = len(cloud.sns.messages)
    again = scheduled(cloud, config)
    assert cloud.sns.messages[sent:] == []
    assert again.notices == []


# ---------------------------------------------------------------------------------------------
# Stale is not the only rejection.


def test_a_cname_at_the_active_name_is_reported_once_and_blocks_nothing_else() -> None:
    cloud = small_cluster()
    cloud.route53.cnames.add(ACTIVE)
    # The pool in every round, as the LBs: the list is published in the run's second round.
    config = settings(FAKE_CLOUD_ENV, probe_rounds="3", pool_interval="3")

    first = scheduled(cloud, config)
    # Route 53's own message, once, and not taken for a stale view.
    assert any("conflicting RRSet of type  CNAME" in e for e in first.errors), first.errors
    assert not any("stale" in e for e in first.errors), first.errors
    rejected = [m for m in cloud.sns.messages if "conflicting RRSet" in m]
    assert len(rejected) == 1
    # The per-LB records and the backend list went ahead, without the active record.
    assert cloud.route53.value(f"lb1.{DOMAIN}") == (LB1,)
    assert cloud.route53.value(f"lb2.{DOMAIN}") == (LB2,)
    assert cloud.route53.value(ACTIVE) is None
    assert cloud.ssm.parameters["/lbf/demo/backends"]
    assert cloud.calls.count("SendCommand") == 2
    # Tried in its round's batch and once alone (the re-read cannot tell which of the batch's
    # records Route 53 refuses), then left out for the rest of the run: not once per round.
    tries = [
        d for op, d in cloud.calls.log if op == "ChangeResourceRecordSets" and ACTIVE in str(d)
    ]
    assert len(tries) == 2
    assert len(tries[1]) == 1  # type: ignore[arg-type]
    assert cloud.calls.count("DescribeInstances") == 2  # the run's read and the one re-read
    # The active role did not move: no LB claims it.
    assert {cloud.ec2.tag(i, "lbf:state") for i in cloud.ec2.instances} <= {None, "standby"}

    # The next runs: still reported, not notified again, and the per-LB records kept current.
    lb2 = next(i for i in cloud.ec2.instances if cloud.ec2.tag(i, "lbf:name") == "lb2")
    cloud.ec2.set_state(lb2, "running", address="127.0.0.32")
    second = scheduled(cloud, config)
    assert any("conflicting RRSet" in e for e in second.errors)
    assert [m for m in cloud.sns.messages if "conflicting RRSet" in m] == rejected
    assert cloud.route53.value(f"lb2.{DOMAIN}") == ("127.0.0.32",)

    # Once the operator removes the CNAME, the active record is created and the notice clears.
    cloud.route53.cnames.clear()
    third = scheduled(cloud, config)
    assert third.ok, third.errors
    assert cloud.route53.value(ACTIVE) == (LB1,)
    assert not any(
        line.startswith("route53-rejected") for line in cloud.ssm.parameters[NOTICES].splitlines()
    )


def test_a_domain_outside_the_zone_still_keeps_the_backend_lists() -> None:
    cloud = small_cluster()
    cloud.route53.zone = "example.org"
    config = settings(FAKE_CLOUD_ENV)
    report = scheduled(cloud, config)
    assert any("is not permitted in zone example.org" in e for e in report.errors)
    assert not any("stale" in e for e in report.errors)
    assert cloud.route53.records == {}
    assert cloud.ssm.parameters["/lbf/demo/backends"] == " ".join(f"{w}:80" for w in WEBS)
    assert cloud.calls.count("SendCommand") == 2
    assert len([m for m in cloud.sns.messages if "not permitted" in m]) == 1
    # Round 1: lb1, lb2 and _lbf in one batch, then each alone (the re-read shows them all
    # unchanged and cannot tell which Route 53 refuses); round 2: the active record (created once
    # a verdict exists), alone in its batch, so not sent again; no batch at all after that.
    batches = [d for op, d in cloud.calls.log if op == "ChangeResourceRecordSets"]
    assert [sorted(c.record.name for c in b) for b in batches] == [  # type: ignore[attr-defined]
        [f"_lbf.{DOMAIN}", f"lb1.{DOMAIN}", f"lb2.{DOMAIN}"],
        [f"lb1.{DOMAIN}"],
        [f"lb2.{DOMAIN}"],
        [f"_lbf.{DOMAIN}"],
        [ACTIVE],
    ]
    scheduled(cloud, config)
    assert len([m for m in cloud.sns.messages if "not permitted" in m]) == 1


def record_batches(cloud: FakeCloud) -> list[list[str]]:
    """Each ChangeResourceRecordSets call, as the names it changed (in the batch's order)."""
    return [
        [c.record.name for c in detail]  # type: ignore[attr-defined]
        for op, detail in cloud.calls.log
        if op == "ChangeResourceRecordSets"
    ]


def by_round(cloud: FakeCloud) -> list[list[tuple[str, object]]]:
    """The calls of a run, cut where each probe round starts (once the prober is `marked`)."""
    rounds: list[list[tuple[str, object]]] = []
    for op, detail in cloud.calls.log:
        if op == "ProbeRound":
            rounds.append([])
        elif rounds:
            rounds[-1].append((op, detail))
    return rounds


def marked(cloud: FakeCloud) -> None:
    probe_round = cloud.prober.probe_round

    def marking(targets: Any) -> Any:
        cloud.calls.add("ProbeRound")
        return probe_round(targets)

    cloud.prober.probe_round = marking  # type: ignore[method-assign]


def names_of(calls: list[tuple[str, object]]) -> list[list[str]]:
    return [
        [c.record.name for c in detail]  # type: ignore[attr-defined]
        for op, detail in calls
        if op == "ChangeResourceRecordSets"
    ]


def ops_of(calls: list[tuple[str, object]], op: str) -> list[object]:
    return [detail for name, detail in calls if name == op]


def test_every_write_of_a_multi_round_run_goes_on_while_route53_rejects_every_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """LBF_DOMAIN outside the hosted zone: every record is rejected, in every round and run."""
    cloud = small_cluster()
    cloud.route53.zone = "example.org"
    marked(cloud)
    # The pool in every round, as the LBs: the list is published in round 2 with the verdicts.
    config = settings(FAKE_CLOUD_ENV, probe_rounds="4", pool_interval="3")
    lbs_parameter = ("/lbf/demo/lbs", f"{LB1} {LB2}")

    first = scheduled(cloud, config)

    one, two, three, four = by_round(cloud)
    # Round 1: the batch, then (the re-read shows every record unchanged and cannot tell which
    # Route 53 refuses) each record alone; <prefix>/lbs and the tags go on.
    assert names_of(one) == [
        [f"lb1.{DOMAIN}", f"lb2.{DOMAIN}", f"_lbf.{DOMAIN}"],
        [f"lb1.{DOMAIN}"],
        [f"lb2.{DOMAIN}"],
        [f"_lbf.{DOMAIN}"],
    ]
    assert ops_of(one, "DescribeInstances") == [None]  # the one re-read
    assert lbs_parameter in ops_of(one, "PutParameter")
    assert ops_of(one, "CreateTags")
    # Round 2 (the first with verdicts): the active record, alone in its batch, so judged without
    # being sent again; the backend list is published and pushed in the same round.
    assert names_of(two) == [[ACTIVE]]
    assert [name for name, _ in ops_of(two, "PutParameter")] == [  # type: ignore[misc]
        "/lbf/demo/backends",
        "/lbf/demo/history",  # the list published, in the round's one history write
    ]
    assert len(ops_of(two, "SendCommand")) == 2
    # Rounds 3 and 4: nothing rejected is sent again, nothing is pushed twice.
    for later in (three, four):
        assert names_of(later) == []
        assert ops_of(later, "SendCommand") == []
    assert {cloud.ec2.tag(i, "lbf:health") for i in cloud.ec2.instances} == {"healthy"}
    # Judged, never called stale: not in the report, not in the log.
    said = [*first.errors, *first.notes, *(r.getMessage() for r in caplog.records)]
    assert not [line for line in said if "stale" in line]
    assert len([e for e in first.errors if "permanent" in e]) == 4
    assert len([m for m in cloud.sns.messages if "not permitted" in m]) == 1

    # The next run: a web server stopped, so the list changes. Its round 1 tries every record
    # again (each run does), and publishes and pushes the new list in that same round.
    web3 = next(i for i, r in cloud.ec2.instances.items() if r.private_ip == WEBS[2])
    cloud.ec2.set_state(web3, "stopped")
    cloud.calls.log.clear()
    caplog.clear()
    second = scheduled(cloud, config)

    one, *later_rounds = by_round(cloud)
    assert names_of(one) == [
        [f"lb1.{DOMAIN}", f"lb2.{DOMAIN}", ACTIVE, f"_lbf.{DOMAIN}"],
        [f"lb1.{DOMAIN}"],
        [f"lb2.{DOMAIN}"],
        [ACTIVE],
        [f"_lbf.{DOMAIN}"],
    ]
    new_list = " ".join(f"{w}:80" for w in WEBS[:2])
    assert ("/lbf/demo/backends", new_list) in ops_of(one, "PutParameter")
    assert [d[1] for d in ops_of(one, "SendCommand")] == [new_list, new_list]  # type: ignore[index]
    assert len(later_rounds) == 3
    assert all(names_of(r) == [] and ops_of(r, "SendCommand") == [] for r in later_rounds)
    assert not second.ok  # exit 1: an action failed
    said = [*second.errors, *second.notes, *(r.getMessage() for r in caplog.records)]
    assert not [line for line in said if "stale" in line]
    assert len([m for m in cloud.sns.messages if "not permitted" in m]) == 1


# What moto says for a DELETE that matches nothing, and a message that names no record at all.
MOTO_REFUSAL = (
    "InvalidInput",
    "Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords], "
    "or TrafficPolicyInstanceId], but found none in Change with [Action=DELETE]",
)
VAGUE_REFUSAL = ("InvalidChangeBatch", "[The request contains an invalid set of changes]")


@pytest.mark.parametrize("refusal", [MOTO_REFUSAL, VAGUE_REFUSAL], ids=["moto", "vague"])
def test_one_bad_name_among_good_ones_is_found_without_reading_the_message(
    refusal: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """A new LB whose name holds a CNAME, in the batch that also moves every record to a new
    LBF_TTL: only lb3 is left out, whatever Route 53's message says (or fails to say)."""
    TXT = f"_lbf.{DOMAIN}"
    cloud = small_cluster()
    settle(cloud, settings(FAKE_CLOUD_ENV))
    lb3 = cloud.ec2.add("lb", "127.0.0.13", name="lb3")
    cloud.route53.cnames.add(f"lb3.{DOMAIN}")
    cloud.route53.refusal = refusal
    config = settings(FAKE_CLOUD_ENV, ttl="300", probe_rounds="3")
    cloud.calls.log.clear()
    sent = len(cloud.sns.messages)

    report = scheduled(cloud, config)

    assert record_batches(cloud) == [
        [f"lb1.{DOMAIN}", f"lb2.{DOMAIN}", f"lb3.{DOMAIN}", ACTIVE, ACTIVE, TXT, TXT],
        [f"lb1.{DOMAIN}"],
        [f"lb2.{DOMAIN}"],
        [f"lb3.{DOMAIN}"],
        # Each compare-and-swap stays one batch, its DELETE with its CREATE: the active record's
        # and the ownership TXT's.
        [ACTIVE, ACTIVE],
        [TXT, TXT],
    ]
    # The good records took the new TTL; lb3's name was left out for the rest of the run.
    for name in (f"lb1.{DOMAIN}", f"lb2.{DOMAIN}", ACTIVE):
        assert cloud.route53.records[(name, "A")].ttl == 300
    assert cloud.route53.records[(f"_lbf.{DOMAIN}", "TXT")].ttl == 300
    assert cloud.route53.value(ACTIVE) == (LB1,)
    assert cloud.route53.value(f"lb3.{DOMAIN}") is None
    # Everything else of the round went on: lb3 got the list and its verdict.
    assert sends_to(cloud, lb3) == 1
    assert cloud.ec2.tag(lb3, "lbf:health") == "healthy"
    errors = [e for e in report.errors if "permanent" in e]
    assert len(errors) == 1
    assert f"lb3.{DOMAIN}" in errors[0]
    assert refusal[1] in errors[0]
    said = [*report.errors, *report.notes, *(r.getMessage() for r in caplog.records)]
    assert not [line for line in said if "stale" in line]
    notices = [m for m in cloud.sns.messages[sent:] if f"lb3.{DOMAIN}" in m]
    assert len(notices) == 1
    assert refusal[1] in notices[0]

    # The next run tries lb3 again, alone in its batch: nothing to split, nothing re-sent.
    cloud.calls.log.clear()
    scheduled(cloud, config)
    assert record_batches(cloud) == [[f"lb3.{DOMAIN}"]]
    assert len([m for m in cloud.sns.messages[sent:] if f"lb3.{DOMAIN}" in m]) == 1
    # The CNAME is removed: the record is made, and the run is clean.
    cloud.route53.cnames.clear()
    fixed = scheduled(cloud, config)
    assert fixed.ok, fixed.errors
    assert cloud.route53.value(f"lb3.{DOMAIN}") == ("127.0.0.13",)


# ---------------------------------------------------------------------------------------------
# The same rejections as botocore sees them, each batch pinned with the Stubber: the in-memory
# Route 53 above raises the project's error itself, and moto is no judge of them (it accepts a
# stale DELETE, applies a batch change by change up to the one it refuses instead of all or
# nothing, enforces no CNAME conflict, and answers InvalidInput where AWS says
# InvalidChangeBatch). Route 53's message is AWS's own wording, or moto's, which names no record:
# both are judged the same way, by the re-read.

ZONE = "Z123"
TXT = f"_lbf.{DOMAIN}"


def rrset(record: Record) -> dict[str, Any]:
    return {
        "Name": record.name + ".",
        "Type": record.type,
        "TTL": record.ttl,
        "ResourceRecords": [{"Value": v} for v in record.values],
    }


def listing(*records: Record, cname: str | None = None) -> dict[str, Any]:
    """A ListResourceRecordSets page; a CNAME, which the controller does not read, at `cname`."""
    sets = [rrset(r) for r in records]
    if cname is not None:
        sets.append(
            {"Name": cname + ".", "Type": "CNAME", "TTL": 300, "ResourceRecords": [{"Value": "x."}]}
        )
    return {"ResourceRecordSets": sets, "IsTruncated": False, "MaxItems": "300"}


def batch(*changes: tuple[str, Record]) -> dict[str, Any]:
    """The exact ChangeResourceRecordSets request for `changes` (the comment carries the plan's
    reason, pinned by the adapter's own tests)."""
    return {
        "HostedZoneId": ZONE,
        "ChangeBatch": {
            "Comment": ANY,
            "Changes": [{"Action": a, "ResourceRecordSet": rrset(r)} for a, r in changes],
        },
    }


def a(name: str, *values: str, ttl: int = 60) -> Record:
    return Record(name, "A", ttl, values)


def txt(*labels: str, ttl: int = 60, owner: str | None = "demo") -> Record:
    """The ownership TXT: its owner first (None: a TXT from before the rule), then the labels."""
    owned = () if owner is None else (f"cluster={owner}",)
    return Record(TXT, "TXT", ttl, tuple(f'"{text}"' for text in (*owned, *labels)))


def aws_cname(name: str) -> str:
    return (
        f"[RRSet of type A with DNS name {name}. is not permitted because a conflicting RRSet of "
        f"type  CNAME with the same DNS name already exists in zone {DOMAIN}.]"
    )


def aws_outside(name: str) -> str:
    return f"[RRSet with DNS name {name}. is not permitted in zone example.org.]"


def stubbed_route53(cloud: FakeCloud) -> tuple[Any, Stubber]:
    client: Any = boto3.session.Session().client(  # type: ignore[call-overload]
        "route53",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=CONFIG,
    )
    return client, Stubber(client)


READ = {"HostedZoneId": ZONE, "StartRecordName": f"{DOMAIN}."}
# A batch that Route 53 rejects, for each wording: (code, message for the batch's records).
WORDINGS = {
    "aws": lambda message: ("InvalidChangeBatch", message),
    "moto": lambda message: MOTO_REFUSAL,
}


def run_pinned(
    cloud: FakeCloud,
    config: Any,
    read: dict[str, Any],
    requests: list[tuple[dict[str, Any], tuple[str, str] | None]],
) -> Report:
    """One round with the real Route 53 adapter on a stubbed client: the run's read, then each
    (request, rejection or None) in order, the re-read after the first."""
    client, stubber = stubbed_route53(cloud)
    stubber.add_response("list_resource_record_sets", read, READ)
    for number, (request, refusal) in enumerate(requests):
        if refusal is None:
            stubber.add_response(
                "change_resource_record_sets",
                {"ChangeInfo": {"Id": "/change/C1", "Status": "PENDING", "SubmittedAt": NOW}},
                request,
            )
        else:
            stubber.add_client_error(
                "change_resource_record_sets",
                service_error_code=refusal[0],
                service_message=refusal[1],
                http_status_code=400,
                expected_params=request,
            )
        if number == 0:
            stubber.add_response("list_resource_record_sets", read, READ)  # the re-read
    services = cloud.services(records=Route53Records(client, ZONE))
    with stubber:
        report = jobs.reconcile(config, services, cloud.clock, rounds=1)
        stubber.assert_no_pending_responses()
    return report


def settled_with_a_new_list() -> FakeCloud:
    """A settled cluster whose backend list changes this round (web3 stopped)."""
    cloud = small_cluster()
    settle(cloud, settings(FAKE_CLOUD_ENV))
    web3 = next(i for i, r in cloud.ec2.instances.items() if r.private_ip == WEBS[2])
    cloud.ec2.set_state(web3, "stopped")
    cloud.calls.log.clear()
    return cloud


def assert_the_rest_went_on(cloud: FakeCloud, report: Report, *, lbs: int = 2) -> None:
    new_list = " ".join(f"{w}:80" for w in WEBS[:2])
    assert cloud.ssm.parameters["/lbf/demo/backends"] == new_list
    assert [d[1] for op, d in cloud.calls.log if op == "SendCommand"] == [new_list] * lbs  # type: ignore[index]
    assert not report.ok
    assert not [line for line in [*report.errors, *report.notes] if "stale" in line]


@pytest.mark.parametrize("wording", WORDINGS)
def test_pinned_a_domain_outside_the_zone_rejects_every_record_alone(wording: str) -> None:
    cloud = settled_with_a_new_list()
    word = WORDINGS[wording]
    records = [
        ("UPSERT", a(f"lb1.{DOMAIN}", LB1)),
        ("UPSERT", a(f"lb2.{DOMAIN}", LB2)),
        ("CREATE", a(ACTIVE, LB1)),
        ("CREATE", txt("lb", "lb1", "lb2")),  # a domain with no TXT gets one with its owner
    ]
    outside = aws_outside(f"lb1.{DOMAIN}")  # AWS names the first record it refuses
    report = run_pinned(
        cloud,
        settings(FAKE_CLOUD_ENV),
        listing(),  # nothing of the domain is in the zone
        [
            (batch(*records), word(outside)),
            *((batch(r), word(aws_outside(r[1].name))) for r in records),
        ],
    )
    assert len([e for e in report.errors if "permanent" in e]) == 4
    assert_the_rest_went_on(cloud, report)
    assert [m for m in cloud.sns.messages if "Route 53 rejects" in m]


@pytest.mark.parametrize("wording", WORDINGS)
def test_pinned_a_cname_at_the_active_name_rejects_it_alone_and_the_txt_goes_through(
    wording: str,
) -> None:
    cloud = settled_with_a_new_list()
    word = WORDINGS[wording]
    read = listing(
        a(f"lb1.{DOMAIN}", LB1), a(f"lb2.{DOMAIN}", LB2), txt("lb1", "lb2"), cname=ACTIVE
    )
    create = ("CREATE", a(ACTIVE, LB1))
    owned = (("DELETE", txt("lb1", "lb2")), ("CREATE", txt("lb", "lb1", "lb2")))
    report = run_pinned(
        cloud,
        settings(FAKE_CLOUD_ENV),
        read,
        [
            (batch(create, *owned), word(aws_cname(ACTIVE))),
            (batch(create), word(aws_cname(ACTIVE))),
            (batch(*owned), None),  # the TXT's compare-and-swap, one DELETE + CREATE
        ],
    )
    rejected = [e for e in report.errors if "permanent" in e]
    assert len(rejected) == 1
    assert f"CREATE {ACTIVE}" in rejected[0]
    assert report.failovers == []
    state_tags = [d for op, d in cloud.calls.log if op == "CreateTags" and "lbf:state" in str(d)]
    assert state_tags == []
    assert_the_rest_went_on(cloud, report)


@pytest.mark.parametrize("wording", WORDINGS)
def test_pinned_one_bad_name_among_good_ones_is_the_only_one_left_out(wording: str) -> None:
    cloud = settled_with_a_new_list()
    lb3 = cloud.ec2.add("lb", "127.0.0.13", name="lb3")
    word = WORDINGS[wording]
    read = listing(
        a(f"lb1.{DOMAIN}", LB1),
        a(f"lb2.{DOMAIN}", LB2),
        a(ACTIVE, LB1),
        txt("lb", "lb1", "lb2"),
        cname=f"lb3.{DOMAIN}",
    )
    lb1, lb2 = (
        ("UPSERT", a(f"lb1.{DOMAIN}", LB1, ttl=300)),
        ("UPSERT", a(f"lb2.{DOMAIN}", LB2, ttl=300)),
    )
    lb3_record = ("UPSERT", a(f"lb3.{DOMAIN}", "127.0.0.13", ttl=300))
    swap = (("DELETE", a(ACTIVE, LB1)), ("CREATE", a(ACTIVE, LB1, ttl=300)))
    owned = (
        ("DELETE", txt("lb", "lb1", "lb2")),
        ("CREATE", txt("lb", "lb1", "lb2", "lb3", ttl=300)),
    )
    bad = word(aws_cname(f"lb3.{DOMAIN}"))
    report = run_pinned(
        cloud,
        settings(FAKE_CLOUD_ENV, ttl="300"),
        read,
        [
            (batch(lb1, lb2, lb3_record, *swap, *owned), bad),
            (batch(lb1), None),
            (batch(lb2), None),
            (batch(lb3_record), bad),
            (batch(*swap), None),  # the compare-and-swap alone is still one DELETE + CREATE
            (batch(*owned), None),
        ],
    )
    rejected = [e for e in report.errors if "permanent" in e]
    assert len(rejected) == 1
    assert f"lb3.{DOMAIN}" in rejected[0]
    assert bad[1] in rejected[0]
    assert sends_to(cloud, lb3) == 1
    assert_the_rest_went_on(cloud, report, lbs=3)


def test_a_rejected_active_record_in_eip_mode_still_moves_the_elastic_ip() -> None:
    cloud = small_cluster()
    config = settings(FAKE_CLOUD_ENV, mode="eip", eip_allocation_id="eipalloc-0123456789abcdef0")
    settle(cloud, config)
    lb1 = next(i for i in cloud.ec2.instances if cloud.ec2.tag(i, "lbf:name") == "lb1")
    lb2 = next(i for i in cloud.ec2.instances if cloud.ec2.tag(i, "lbf:name") == "lb2")
    assert cloud.ec2.eip_holder == lb1
    # Someone replaces the active record with a CNAME; then lb1 stops.
    del cloud.route53.records[(ACTIVE, "A")]
    cloud.route53.cnames.add(ACTIVE)
    cloud.ec2.set_state(lb1, "stopped")
    report = scheduled(cloud, config)
    assert cloud.ec2.eip_holder == lb2
    assert [f.moved_to for f in report.failovers] == ["lb2"]
    assert cloud.ec2.tag(lb2, "lbf:state") == "active"
    assert any("conflicting RRSet" in e for e in report.errors)
    assert cloud.route53.value(f"lb1.{DOMAIN}") is None  # its record went with it


def test_a_rejected_active_record_and_a_failed_elastic_ip_move_leave_lbf_state_alone() -> None:
    cloud = small_cluster()
    config = settings(FAKE_CLOUD_ENV, mode="eip", eip_allocation_id="eipalloc-0123456789abcdef0")
    settle(cloud, config)
    lb1, lb2 = cloud.ec2.id_named("lb1"), cloud.ec2.id_named("lb2")
    del cloud.route53.records[(ACTIVE, "A")]
    cloud.route53.cnames.add(ACTIVE)
    cloud.ec2.fail_associate = AwsError("ec2", "AssociateAddress", "RequestLimitExceeded", "slow")
    cloud.ec2.set_state(lb1, "stopped")
    report = scheduled(cloud, config, rounds=1)
    assert cloud.ec2.eip_holder == lb1
    assert report.failovers == []
    assert cloud.ec2.tag(lb2, "lbf:state") == "standby"
    assert cloud.route53.value(f"lb1.{DOMAIN}") is None  # the rest still went ahead


# ---------------------------------------------------------------------------------------------
# A change whose answer was lost is still this run's.


def test_a_failover_whose_answer_was_lost_is_reported_and_notified() -> None:
    cloud = small_cluster()
    config = settings(FAKE_CLOUD_ENV)
    settle(cloud, config)
    cloud.ec2.set_state(cloud.ec2.id_named("lb1"), "stopped")
    cloud.route53.lose_answers = 1
    sent = len(cloud.sns.messages)

    report = scheduled(cloud, config)
    assert cloud.route53.value(ACTIVE) == (LB2,)
    assert [(f.moved_from, f.moved_to) for f in report.failovers] == [("lb1", "lb2")]
    moved = [m for m in cloud.sns.messages[sent:] if m.startswith("active record moved")]
    assert len(moved) == 1
    assert report.ok, report.errors
    assert cloud.ec2.tag(cloud.ec2.id_named("lb2"), "lbf:state") == "active"


def test_two_overlapping_runs_that_make_the_same_move_notify_it_once() -> None:
    cloud = small_cluster()
    config = settings(FAKE_CLOUD_ENV, probe_rounds="1")
    settle(cloud, config)
    cloud.ec2.set_state(cloud.ec2.id_named("lb1"), "stopped")
    sent = len(cloud.sns.messages)
    reports: list[Report] = []

    def overlap() -> None:  # a second run starts, reads the same world, and moves first
        reports.append(jobs.reconcile(config, cloud.services(), cloud.clock))

    cloud.route53.before_change = overlap
    reports.append(scheduled(cloud, config))
    assert cloud.route53.value(ACTIVE) == (LB2,)
    # Both runs count the failover (one made it, the other recognised it) ...
    assert [[(f.moved_from, f.moved_to) for f in r.failovers] for r in reports] == [
        [("lb1", "lb2")],
        [("lb1", "lb2")],
    ]
    # ... and the notice keyed by the move goes out once.
    moved = [m for m in cloud.sns.messages[sent:] if m.startswith("active record moved")]
    assert len(moved) == 1
    # A later move back is a new move, notified again.
    cloud.ec2.set_state(cloud.ec2.id_named("lb1"), "running")
    cloud.ec2.set_state(cloud.ec2.id_named("lb2"), "stopped")
    for _ in range(3):
        scheduled(cloud, config)
    assert cloud.route53.value(ACTIVE) == (LB1,)
    moved = [m for m in cloud.sns.messages[sent:] if m.startswith("active record moved")]
    assert len(moved) == 2


# ---------------------------------------------------------------------------------------------
# Pushes: a step timeout, and an LB whose SSM agent is not registered.


def sends_to(cloud: FakeCloud, instance_id: str) -> int:
    return sum(1 for op, d in cloud.calls.log if op == "SendCommand" and d[0] == instance_id)  # type: ignore[index]


def test_a_push_stuck_past_the_step_timeout_is_reported_and_sent_again() -> None:
    cloud = small_cluster()
    config = settings(FAKE_CLOUD_ENV)
    settle(cloud, config)
    lb2 = cloud.ec2.id_named("lb2")
    cloud.ssm.outcome = lambda command: "InProgress" if command.instance_id == lb2 else "Success"
    web3 = next(i for i, r in cloud.ec2.instances.items() if r.private_ip == WEBS[2])
    cloud.ec2.set_state(web3, "stopped")
    cloud.calls.log.clear()
    sent = len(cloud.sns.messages)

    for _ in range(4):  # 0, 60, 120 and 180 s after the push: within the step's 180 s
        scheduled(cloud, config)
    assert sends_to(cloud, lb2) == 1
    overdue_run = scheduled(cloud, config)  # 240 s: overdue
    assert sends_to(cloud, lb2) == 2
    assert any("still InProgress" in note for note in overdue_run.notes)
    overdue = [m for m in cloud.sns.messages[sent:] if "still InProgress" in m]
    assert len(overdue) == 1
    assert "sent again" in overdue[0]
    # The push sent again finishes: lbf:backends follows, nothing more is sent.
    cloud.ssm.outcome = lambda command: "Success"
    for _ in range(2):
        scheduled(cloud, config)
    assert sends_to(cloud, lb2) == 2
    assert cloud.ec2.tag(lb2, "lbf:backends") == cloud.ec2.tag(
        cloud.ec2.id_named("lb1"), "lbf:backends"
    )


def test_an_lb_still_booting_whose_agent_is_unknown_is_retried_each_run_and_not_news() -> None:
    cloud = small_cluster()
    config = settings(FAKE_CLOUD_ENV)
    settle(cloud, config)
    lb3 = cloud.ec2.add("lb", "127.0.0.13", name="lb3", launch_time=cloud.clock.now())
    cloud.ssm.fail_send_for = {lb3}
    cloud.calls.log.clear()
    sent = len(cloud.sns.messages)

    booting = scheduled(cloud, config)
    assert sends_to(cloud, lb3) == 1  # once in the run, not every round
    assert booting.ok, booting.errors
    assert any("waits for the LB's SSM agent" in n for n in booting.notes)
    assert cloud.sns.messages[sent:] == []

    for _ in range(9):  # ten minutes after launch: still booting as far as SSM can tell
        scheduled(cloud, config)
    assert sends_to(cloud, lb3) == 10
    assert cloud.sns.messages[sent:] == []

    cloud.clock.advance(30)
    late = [scheduled(cloud, config) for _ in range(3)]  # past the grace period: news, once
    assert sends_to(cloud, lb3) == 13
    assert all(any("SSM does not know" in e for e in r.errors) for r in late)
    assert len([m for m in cloud.sns.messages[sent:] if "SSM does not know" in m]) == 1

    cloud.ssm.fail_send_for = set()
    scheduled(cloud, config)
    final = scheduled(cloud, config)
    assert final.ok, final.errors
    assert cloud.ec2.tag(lb3, "lbf:backends") == cloud.ec2.tag(
        cloud.ec2.id_named("lb1"), "lbf:backends"
    )


def test_sendcommand_refusing_a_booting_lbs_agent_is_pinned_with_the_stubber() -> None:
    """The exact SendCommand and AWS's refusal, as botocore sees them: moto's send_command runs
    any command on any instance and never answers InvalidInstanceId."""
    cloud = small_cluster(lbs=1)
    # The pool in every round, as the LB: the list to push exists from round 2.
    config = settings(FAKE_CLOUD_ENV, probe_rounds="3", pool_interval="3")
    lb1 = cloud.ec2.id_named("lb1")
    cloud.ec2.instances[lb1] = replace(cloud.ec2.instances[lb1], launch_time=cloud.clock.now())
    client: Any = boto3.session.Session().client(  # type: ignore[call-overload]
        "ssm",
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=CONFIG,
    )
    stubber = Stubber(client)
    stubber.add_response("list_commands", {"Commands": []})
    backends = " ".join(f"{w}:80" for w in WEBS)
    stubber.add_client_error(
        "send_command",
        service_error_code="InvalidInstanceId",
        service_message="Instances [[" + lb1 + "]] not in a valid state for account 123456789012",
        http_status_code=400,
        expected_params={
            "InstanceIds": [lb1],
            "DocumentName": "LbFailover-UpdateBackends",
            "Comment": f"lbf-backends {checksum(backends)}",
            "Parameters": {"Backends": [backends], "Checksum": [checksum(backends)]},
            "TimeoutSeconds": 600,
        },
    )
    services = cloud.services(pushes=SsmPushes(client, "LbFailover-UpdateBackends"))
    with stubber:
        report = jobs.reconcile(config, services, cloud.clock)
        stubber.assert_no_pending_responses()  # one SendCommand in three rounds
    assert report.ok, report.errors
    assert any("waits for the LB's SSM agent" in n for n in report.notes)
    assert not [m for m in cloud.sns.messages if lb1 in m]


def test_two_overlapping_runs_that_see_the_same_new_condition_notify_it_once() -> None:
    """Found by the model-based test: the second run's batch held no compare-and-swap, so
    nothing made it re-read, and it sent what the first had just sent."""
    cloud = small_cluster()
    config = settings(FAKE_CLOUD_ENV, probe_rounds="1")
    settle(cloud, config)
    cloud.ec2.add("web", "127.0.1.29", tags={"lbf:port": "80a"})
    cloud.ec2.add("lb", "127.0.0.13", name="lb3")  # so that both runs write records
    sent = len(cloud.sns.messages)

    def overlap() -> None:
        jobs.reconcile(config, cloud.services(), cloud.clock)

    cloud.route53.before_change = overlap
    scheduled(cloud, config)
    assert cloud.route53.value(f"lb3.{DOMAIN}") == ("127.0.0.13",)
    skipped = [m for m in cloud.sns.messages[sent:] if "skipped" in m]
    assert len(skipped) == 1, skipped


# ---------------------------------------------------------------------------------------------
# The same rules across modes, kinds of run, dry run and pause, and a run that dies half-way.

MODES = {
    "dns": {},
    "eip": {"LBF_MODE": "eip", "LBF_EIP_ALLOCATION_ID": "eipalloc-0123456789abcdef0"},
    "active-active": {"LBF_ACTIVE_MODE": "all"},
}


@pytest.mark.parametrize("mode", MODES)
def test_overlapping_runs_and_a_lost_answer_notify_one_failover_per_move_in_every_mode(
    mode: str,
) -> None:
    cloud = small_cluster(lbs=3)
    config = settings(FAKE_CLOUD_ENV, MODES[mode], probe_rounds="1")
    settle(cloud, config)
    sent = len(cloud.sns.messages)
    reports: list[Report] = []

    def overlap() -> None:
        reports.append(jobs.reconcile(config, cloud.services(), cloud.clock))

    if mode == "eip":
        # The Elastic IP moves with AssociateAddress, not a batch: the other run moves it first.
        original = cloud.ec2.address_holder
        armed = [True]

        def holder_after_overlap(allocation_id: str) -> tuple[str | None, str | None]:
            # The outer run's second look (the executor's check before AssociateAddress).
            if armed[0] and cloud.calls.count("DescribeAddresses") == 1:
                armed[0] = False
                overlap()
            return original(allocation_id)

        cloud.ec2.address_holder = holder_after_overlap  # type: ignore[method-assign]
    else:
        cloud.route53.before_change = overlap
    cloud.calls.log.clear()
    cloud.ec2.set_state(cloud.ec2.id_named("lb1"), "stopped")
    reports.append(scheduled(cloud, config))

    assert len(reports) == 2
    assert all(len(r.failovers) == 1 for r in reports), [r.failovers for r in reports]
    moved = [m for m in cloud.sns.messages[sent:] if m.startswith("active record moved")]
    assert len(moved) == 1, moved

    # A lost answer for the next move (lb2 stops too): still one failover and one notice.
    cloud.route53.before_change = None
    if mode == "eip":
        cloud.ec2.address_holder = original  # type: ignore[method-assign]
    cloud.route53.lose_answers = 1
    cloud.ec2.set_state(cloud.ec2.id_named("lb2"), "stopped")
    report = scheduled(cloud, config)
    assert len(report.failovers) == 1
    moved = [m for m in cloud.sns.messages[sent:] if m.startswith("active record moved")]
    assert len(moved) == 2


def test_an_event_run_and_the_cli_meet_a_cname_like_a_scheduled_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cloud = small_cluster()
    config = settings(FAKE_CLOUD_ENV)
    settle(cloud, config)
    del cloud.route53.records[(ACTIVE, "A")]
    cloud.route53.cnames.add(ACTIVE)
    lb1 = cloud.ec2.id_named("lb1")
    cloud.ec2.set_state(lb1, "stopped")
    event = jobs.on_instance_change(config, cloud.services(), cloud.clock, lb1)
    assert any("conflicting RRSet" in e for e in event.errors)
    assert cloud.route53.value(f"lb1.{DOMAIN}") is None  # the stopped LB's record still goes
    assert len([m for m in cloud.sns.messages if "conflicting RRSet" in m]) == 1

    environ = environment(FAKE_CLOUD_ENV)
    code = main(["reconcile"], environ=environ, services=cloud.services(), clock=cloud.clock)
    out = capsys.readouterr().out
    assert code == 1
    assert "conflicting RRSet of type  CNAME" in out
    assert len([m for m in cloud.sns.messages if "conflicting RRSet" in m]) == 1


@pytest.mark.parametrize("how", ["dry_run", "paused"])
def test_dry_run_and_pause_meet_no_rejection_and_write_nothing(how: str) -> None:
    cloud = small_cluster()
    cloud.route53.cnames.add(ACTIVE)
    config = (
        settings(FAKE_CLOUD_ENV, dry_run="true") if how == "dry_run" else settings(FAKE_CLOUD_ENV)
    )
    if how == "paused":
        cloud.ssm.parameters["/lbf/demo/paused"] = "true"
    report = scheduled(cloud, config)
    assert cloud.calls.writes() == []
    assert any(ACTIVE in p for p in report.planned)
    assert not any("rejected" in e for e in report.errors)


@pytest.mark.parametrize("kill_at", range(0, 8))
def test_a_run_killed_half_way_through_a_rejection_leaves_the_next_run_to_finish(
    kill_at: int,
) -> None:
    cloud = small_cluster()
    config = settings(FAKE_CLOUD_ENV)
    settle(cloud, config)
    del cloud.route53.records[(ACTIVE, "A")]
    cloud.route53.cnames.add(ACTIVE)
    lb2 = cloud.ec2.id_named("lb2")
    cloud.ec2.set_state(lb2, "running", address="127.0.0.32")
    cloud.calls.before = kill_at_write(kill_at)
    with contextlib.suppress(Killed):
        scheduled(cloud, config)
    cloud.calls.before = None
    report = scheduled(cloud, config)
    assert any("conflicting RRSet" in e for e in report.errors)
    assert cloud.route53.value(f"lb2.{DOMAIN}") == ("127.0.0.32",)
    scheduled(cloud, config)
    # Notified once (or, when the kill came between sending and storing, at most once more).
    assert 1 <= len([m for m in cloud.sns.messages if "conflicting RRSet" in m]) <= 2


def test_a_cname_at_the_active_name_in_active_active_mode_blocks_nothing_else() -> None:
    cloud = small_cluster()
    cloud.route53.cnames.add(ACTIVE)
    config = settings(FAKE_CLOUD_ENV, active_mode="all")
    report = scheduled(cloud, config)
    assert any("conflicting RRSet" in e for e in report.errors)
    assert cloud.route53.value(f"lb1.{DOMAIN}") == (LB1,)
    assert cloud.route53.value(f"lb2.{DOMAIN}") == (LB2,)
    assert {cloud.ec2.tag(i, "lbf:state") for i in cloud.ec2.instances} <= {None, "standby"}
    assert {cloud.ec2.tag(i, "lbf:health") for i in cloud.ec2.instances} == {"healthy"}
    cloud.route53.cnames.clear()
    scheduled(cloud, config)
    assert set(cloud.route53.value(ACTIVE) or ()) == {LB1, LB2}
    assert len([m for m in cloud.sns.messages if "conflicting RRSet" in m]) == 1
