"""Hostile input: every tag, stored value and event field an attacker or a typo could set.

EC2 tag values are free text (256 Unicode characters, anything at all), and so are Parameter Store
values and the fields of an event. Each case here gets a clear, named reason (a skipped instance, a
value read as absent, an ignored event) and none of it reaches DNS, a configuration file or a
command: the tests look at every write call the run made, not at what the code meant to do.

Configuration variables are covered by tests/unit/test_config.py (newlines, `$(...)`, 10 KiB values,
ports 0 and 70000, a TTL of -1, a domain with a trailing dot or upper case): a bad one stops the
run before any AWS call. Here only the normalised domain is followed through to Route 53.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib import render
from chalicelib.adapters.clients import CONFIG
from chalicelib.adapters.route53 import Route53Records
from chalicelib.adapters.ssm import SsmPushes
from chalicelib.config import Settings
from chalicelib.config.reading import ConfigError
from chalicelib.core import backends as backend_lists
from chalicelib.core.dns import RecordChange
from chalicelib.core.model import Damping, Instance, Record, Role, Verdict
from chalicelib.report import Report
from tests.kit.cloud import FAKE_CLOUD_ENV, FAKE_DOMAIN, FakeCloud, small_cluster
from tests.kit.lambda_app import CLUSTER as STAGE_CLUSTER
from tests.kit.lambda_app import LambdaApp
from tests.kit.runs import run
from tests.kit.settings import settings

DOMAIN = FAKE_DOMAIN
ACTIVE = f"lb.{DOMAIN}"
BACKENDS = "/lbf/demo/backends"
GOOD_LIST = "127.0.1.21:80 127.0.1.22:80"
ROOT = Path(__file__).resolve().parents[2]

# Everything the controller itself ever writes into a record, a tag, a parameter or a command is
# built from parsed values: addresses, ports, labels, fixed words, hex checksums.
_CLEAN = re.compile(r'[A-Za-z0-9 .:\[\]"_/-]*')

TEN_KIB = "x" * 10240
COMMAND_ID = "0b5e1c6a-1f2d-4c3b-9a8e-7d6c5b4a3f21"  # SSM ids are 36 characters


def two_webs() -> FakeCloud:
    return small_cluster(webs=("127.0.1.21", "127.0.1.22"))


def written_strings(cloud: FakeCloud) -> list[str]:
    """Every string that went into a record, a tag, the backend or LB parameter, or a command."""
    out: list[str] = []
    for operation, detail in cloud.calls.log:
        if operation == "ChangeResourceRecordSets":
            assert isinstance(detail, tuple)
            for change in detail:
                assert isinstance(change, RecordChange)
                out += [change.record.name, change.record.type, *change.record.values]
        elif operation == "CreateTags":
            assert isinstance(detail, tuple)
            instance_ids, tags = detail
            out += list(instance_ids)
            out += [part for pair in tags for part in pair]
        elif operation == "PutParameter":
            assert isinstance(detail, tuple)
            name, value = detail
            if name.endswith("/history"):  # JSON for `history`: its texts are checked below
                continue
            if not name.endswith("/notices"):  # bookkeeping, read back only by the controller
                out += [name, value]
        elif operation == "SendCommand":
            assert isinstance(detail, tuple)
            out += list(detail)
    return out


def assert_nothing_hostile_written(cloud: FakeCloud, hostile: str) -> None:
    for text in written_strings(cloud):
        if text == '"cluster=demo"':  # the owner's string in the _lbf TXT: LBF_CLUSTER's
            continue
        assert _CLEAN.fullmatch(text), f"unclean value written: {text!r}"
        if len(hostile) >= 3:
            assert hostile not in text or hostile in GOOD_LIST, (hostile, text)
    # The history is JSON (escaped by construction) that `history` prints: each event's text and
    # reason one printable line, and nothing of the skipped instance's tags in it.
    for operation, detail in cloud.calls.log:
        if operation == "PutParameter" and str(detail[0]).endswith("/history"):  # type: ignore[index]
            for event in json.loads(detail[1]):  # type: ignore[index]
                for text in (event["text"], event.get("reason", "")):
                    assert text.isprintable(), text
                    if len(hostile) >= 3:
                        assert hostile not in text or hostile in GOOD_LIST, (hostile, text)


def assert_notices_are_escaped(report: Report, cloud: FakeCloud) -> None:
    """Reasons reach logs, notices and `status` only escaped and shortened."""
    for text in [*report.notes, *report.notices, *cloud.sns.messages]:
        assert text.isprintable(), text
        assert len(text) < 400, text


# --- tags an operator sets --------------------------------------------------------------------

HOSTILE_TEXT = [
    "$(reboot)",
    "`id`",
    "a;reboot",
    "a|sh",
    "a&&id",
    "a\nb",
    "a\r\nb",
    "a\x00b",
    "a b",
    TEN_KIB,
]

HOSTILE_PORTS = [
    "0",
    "70000",
    "65536",
    "-1",
    "+80",
    "080 ",
    " 80",
    "80\n",
    "8080 8081",
    "1e3",
    "0x50",
    "\u0668\u0660",  # Arabic-Indic digits: isdigit() says yes, int() says 80
    "\uff18\uff10",  # fullwidth "80"
    "",
    *HOSTILE_TEXT,
]

HOSTILE_NAMES = [
    "LB3",
    "Lb3",
    "lb3.",
    "lb3.evil.com",
    "-lb3",
    "lb3-",
    "lb_3",
    "*",
    "lb",  # the active record's name
    "\u217cb3",  # SMALL ROMAN NUMERAL FIFTY, looks like "l"
    "lb\uff13",  # fullwidth 3
    "lb\u200b3",  # zero-width space
    "\u0430b3",  # Cyrillic a
    "a" * 64,
    "",
    *HOSTILE_TEXT,
]

HOSTILE_ROLES = [
    "LB",
    "Web",
    "web ",
    "web\n",
    "\uff57\uff45\uff42",  # fullwidth "web"
    "web;id",
    "",
    "lb,web",
    TEN_KIB,
]
HOSTILE_MAINTENANCE = ["Drain", "drain\n", " drain", "yes", "true", "$(reboot)", TEN_KIB]


def _cases() -> Iterator[Any]:
    for value in HOSTILE_PORTS:
        yield pytest.param("web", {"lbf:port": value}, "lbf:port", id=f"port-{value[:12]!r}")
    for value in HOSTILE_NAMES:
        yield pytest.param("lb", {"lbf:name": value}, "lbf:name", id=f"name-{value[:12]!r}")
    for value in HOSTILE_ROLES:
        yield pytest.param(None, {"lbf:role": value}, "lbf:role", id=f"role-{value[:12]!r}")
    for value in HOSTILE_MAINTENANCE:
        for role in ("lb", "web"):
            yield pytest.param(
                role,
                {"lbf:maintenance": value},
                "lbf:maintenance",
                id=f"drain-{role}-{value[:12]!r}",
            )


@pytest.mark.parametrize(("role", "tags", "key"), list(_cases()))
def test_a_tag_that_does_not_parse_skips_the_instance_and_reaches_nothing(
    role: str | None, tags: dict[str, str], key: str
) -> None:
    cloud = two_webs()
    config = settings(FAKE_CLOUD_ENV)
    hostile_value = next(iter(tags.values()))
    hostile = cloud.ec2.add(role or "web", "127.0.1.99", tags=tags)
    if role is None:
        cloud.ec2.set_tag(hostile, "lbf:role", hostile_value)

    reports = [run(cloud, config), run(cloud, config)]

    for report in reports:
        assert report.ok, report.errors
        assert_notices_are_escaped(report, cloud)
    reasons = [n for n in reports[-1].notes if n.startswith(f"skipped {hostile}: ")]
    assert len(reasons) == 1
    assert key in reasons[0]
    # The rest of the cluster is served exactly as if the instance were not there.
    assert cloud.ssm.parameters[BACKENDS] == GOOD_LIST
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)
    names = {name for name, _ in cloud.route53.records}
    assert names == {ACTIVE, f"lb1.{DOMAIN}", f"lb2.{DOMAIN}", f"_lbf.{DOMAIN}"}
    sent = [d for op, d in cloud.calls.log if op == "SendCommand"]
    assert sent
    assert {d[1] for d in sent} == {GOOD_LIST}  # type: ignore[index]
    # The skipped instance is never tagged or pushed to (it may be probed: its tags are frozen,
    # not its health; SPEC "Where two rules meet").
    assert all(hostile not in d for op, d in cloud.calls.log if op == "CreateTags")  # type: ignore[operator]
    assert_nothing_hostile_written(cloud, hostile_value)
    # `status` shows it as skipped, with the reason escaped onto one line.
    world = reports[-1].world
    assert world is not None
    text = render.status_text(world, config)
    [line] = [line for line in text.splitlines() if hostile in line]
    assert "skipped" in line
    assert line.isprintable()
    assert len(line) < 400


@pytest.mark.parametrize(
    "tags",
    [
        {"lbf:health": "healthy\n$(reboot)"},
        {"lbf:health": "HEALTHY"},
        {"lbf:probe": "ok:2;reboot"},
        {"lbf:probe": "ok:\uff12"},
        {"lbf:probe": "ok:99999"},
        {"lbf:probe": "fail:-1"},
        {"lbf:state": "active\n"},
        {"lbf:state": "$(reboot)"},
        {"lbf:backends": "$(reboot)"},
        {"lbf:backends": "A" * 64},
        {"lbf:backends": TEN_KIB},
    ],
    ids=lambda tags: "-".join(f"{k}={v[:12]!r}" for k, v in tags.items()),
)
def test_a_controller_tag_that_does_not_parse_is_read_as_absent_and_rewritten(
    tags: dict[str, str],
) -> None:
    cloud = two_webs()
    config = settings(FAKE_CLOUD_ENV)
    lb1 = next(iter(cloud.ec2.instances))
    for key, value in tags.items():
        cloud.ec2.set_tag(lb1, key, value)

    report = run(cloud, config)
    run(cloud, config)

    assert report.ok, report.errors
    assert not any(n.startswith(f"skipped {lb1}") for n in report.notes)
    assert cloud.ec2.tag(lb1, "lbf:health") == "healthy"
    assert cloud.ec2.tag(lb1, "lbf:probe") == "ok:2"
    assert cloud.ec2.tag(lb1, "lbf:state") == "active"
    assert cloud.ec2.tag(lb1, "lbf:backends") == backend_lists.checksum(GOOD_LIST)
    assert_nothing_hostile_written(cloud, next(iter(tags.values())))


@pytest.mark.parametrize(
    ("address", "entry"),
    [
        ("2001:DB8:0:0::5", "[2001:db8::5]:80"),  # upper case, zeros: written compressed
        ("::ffff:127.0.1.30", "[::ffff:7f00:11e]:80"),  # IPv4-mapped: one canonical spelling
    ],
)
def test_ipv6_web_servers_are_listed_in_one_canonical_form(address: str, entry: str) -> None:
    cloud = two_webs()
    cloud.ec2.add("web", address)
    report = run(cloud, settings(FAKE_CLOUD_ENV))

    assert report.ok, report.errors
    assert cloud.ssm.parameters[BACKENDS] == f"{GOOD_LIST} {entry}"


@pytest.mark.parametrize(
    "address",
    [
        "fe80::1%$(reboot)",  # a scope id is free text to ipaddress
        "fe80::1%eth0",
        "fe80::1%\u00e9",
        "127.0.1.030",
        "127.0.1.30 ",
        "127.0.1.30\n",
        "0x7f.0.1.30",
        "::1/128",
    ],
)
def test_an_address_that_is_not_a_plain_ip_skips_the_instance(address: str) -> None:
    """Addresses come from EC2, but a stand-in (or a bug there) must not inject through them."""
    cloud = two_webs()
    web = cloud.ec2.add("web", address)
    report = run(cloud, settings(FAKE_CLOUD_ENV))

    assert report.ok, report.errors
    assert any(n.startswith(f"skipped {web}: ") and "address" in n for n in report.notes)
    assert cloud.ssm.parameters[BACKENDS] == GOOD_LIST
    assert_nothing_hostile_written(cloud, address)


# --- stored values --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stored",
    [
        "[fe80::1%$(reboot)]:80",
        "[fe80::1%\u00e9]:80",
        "127.0.1.21:80;reboot",
        "127.0.1.21:80\n127.0.1.22:80",
        "127.0.1.21:080",
        "[127.0.1.21]:80",
        "127.0.1.21:0",
        "127.0.1.21:70000",
        "[2001:DB8::5]:80",
        "2001:db8::5:80",
        "127.0.1.21:80  127.0.1.22:80",
        TEN_KIB,
    ],
)
def test_a_hand_edited_backend_parameter_is_never_pushed(stored: str) -> None:
    """While a guard keeps the last list, that list comes from Parameter Store: it must be one the
    controller could have written, or it counts as none (and nothing is pushed)."""
    cloud = two_webs()
    config = settings(FAKE_CLOUD_ENV)
    run(cloud, config)
    # Every web server down: the empty-list guard keeps "the last list".
    cloud.prober.dead |= {"127.0.1.21", "127.0.1.22"}
    run(cloud, config)
    cloud.ssm.parameters[BACKENDS] = stored
    # A new LB appears that has never had a list.
    cloud.ec2.add("lb", "127.0.0.13", name="lb3")
    cloud.calls.log.clear()

    reports = [run(cloud, config), run(cloud, config)]

    for report in reports:
        assert report.ok, report.errors
    assert cloud.calls.count("SendCommand") == 0
    assert_nothing_hostile_written(cloud, stored)
    world = reports[-1].world
    assert world is not None
    assert render.status_text(world, config)  # and `status` can still show it


# --- configuration variables: the two kinds tests/unit/test_config.py does not try everywhere -----

# A valid value of every variable; each case below spoils one of them.
VALID_VARIABLES = {
    "LBF_CLUSTER": "demo",
    "LBF_DOMAIN": DOMAIN,
    "LBF_HOSTED_ZONE_ID": "Z123",
    "LBF_ACTIVE_NAME": "lb",
    "LBF_TTL": "60",
    "LBF_MODE": "dns",
    "LBF_LB_ADDRESS": "public",
    "LBF_POOL_ADDRESS": "private",
    "LBF_LB_CHECK": "http://{address}:80/health",
    "LBF_POOL_CHECK": "http://{address}:{port}/health",
    "LBF_POOL_PORT": "80",
    "LBF_PROBE_TIMEOUT": "2",
    "LBF_PROBE_INTERVAL": "10",
    "LBF_PROBE_ROUNDS": "6",
    "LBF_RISE": "2",
    "LBF_FALL": "3",
    "LBF_SSM_DOCUMENT": "LbFailover-UpdateBackends",
    "LBF_PARAMETER_PREFIX": "/lbf/demo",
    "LBF_SNS_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:lbf",
    "LBF_DRY_RUN": "false",
    "LBF_MAX_POOL_DROP": "50",
    "LBF_PROBER_FAULT_PERCENT": "100",
}


def _look_alike(value: str) -> str:
    """The value with its first letter or digit swapped for the fullwidth form that looks alike."""
    index = next(i for i, char in enumerate(value) if char.isascii() and char.isalnum())
    return value[:index] + chr(ord(value[index]) + 0xFEE0) + value[index + 1 :]


@pytest.mark.parametrize("variable", list(VALID_VARIABLES))
@pytest.mark.parametrize("kind", ["10-KiB", "look-alike"])
def test_a_huge_or_look_alike_variable_is_a_named_error(variable: str, kind: str) -> None:
    assert Settings.from_env(VALID_VARIABLES)  # the valid set is valid
    value = VALID_VARIABLES[variable]
    spoiled = value + "a" * 10240 if kind == "10-KiB" else _look_alike(value)
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({**VALID_VARIABLES, variable: spoiled})
    assert raised.value.variable == variable
    assert len(str(raised.value)) < 600  # the value is shown shortened, never whole
    assert str(raised.value).isprintable()


# --- the domain, as the operator may write it -----------------------------------------------------


@pytest.mark.parametrize("domain", ["Prod.Example.COM", "prod.example.com.", "PROD.EXAMPLE.COM."])
def test_the_domain_reaches_route53_in_one_form(domain: str) -> None:
    """Upper case and a trailing dot name the same zone; Route 53 gets one trailing dot, no more."""
    config = settings(FAKE_CLOUD_ENV, domain=domain)
    assert config.domain == DOMAIN
    client = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client("route53", config=CONFIG)
    records = Route53Records(client, config.hosted_zone_id)
    change = RecordChange(
        "CREATE", Record(config.active_record_name, "A", config.ttl, ("192.0.2.1",))
    )
    with Stubber(client) as stub:
        stub.add_response(
            "change_resource_record_sets",
            {"ChangeInfo": {"Id": "/change/C1", "Status": "PENDING", "SubmittedAt": "2024-01-01"}},
            {
                "HostedZoneId": "Z123",
                "ChangeBatch": {
                    "Comment": "test",
                    "Changes": [
                        {
                            "Action": "CREATE",
                            "ResourceRecordSet": {
                                "Name": "lb.prod.example.com.",
                                "Type": "A",
                                "TTL": 60,
                                "ResourceRecords": [{"Value": "192.0.2.1"}],
                            },
                        }
                    ],
                },
            },
        )
        records.change([change], comment="test")
        stub.assert_no_pending_responses()


# --- the SSM command, rendered for the worst cases ------------------------------------------------


def _worst_list() -> tuple[str, str]:
    """The longest list Parameter Store can hold, with every form an entry can take."""
    webs = [
        ("2001:db8::ffff:ffff", 65535),
        ("::ffff:7f00:1", 1),
        ("255.255.255.255", 65535),
        ("0.0.0.1", 1),
    ]
    text = " ".join(backend_lists.Backend(a, p, "").render() for a, p in webs)
    number = 0
    while True:
        address = str(ipaddress.ip_address("10.0.0.0") + number)
        extra = f" {address}:65535"
        if len((text + extra).encode()) > backend_lists.MAX_LIST_BYTES:
            break
        webs.append((address, 65535))
        text += extra
        number += 1
    built = backend_lists.build_list(
        [_web(address, port, index) for index, (address, port) in enumerate(webs)]
    )
    return built.text, built.checksum


def _web(address: str, port: int, index: int) -> Instance:
    return Instance(
        instance_id=f"i-{index:017x}",
        role=Role.WEB,
        state="running",
        launch_time=0.0,
        address=address,
        port=port,
        damping=Damping(verdict=Verdict.HEALTHY),
    )


@pytest.mark.parametrize(
    ("backends", "checksum"),
    [
        pytest.param("127.0.1.21:80", backend_lists.checksum("127.0.1.21:80"), id="one"),
        pytest.param(
            "0.0.0.1:1 255.255.255.255:65535 [::ffff:7f00:1]:1 [2001:db8::ffff:ffff]:65535",
            backend_lists.checksum(
                "0.0.0.1:1 255.255.255.255:65535 [::ffff:7f00:1]:1 [2001:db8::ffff:ffff]:65535"
            ),
            id="extremes",
        ),
    ],
)
def test_the_ssm_command_carries_exactly_the_list_and_its_checksum(
    backends: str, checksum: str
) -> None:
    """Pinned with Stubber: moto accepts any parameters at all, so it cannot tell."""
    client = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-1"
    ).client("ssm", config=CONFIG)
    commands = SsmPushes(client, "LbFailover-UpdateBackends")
    with Stubber(client) as stub:
        stub.add_response(
            "send_command",
            {"Command": {"CommandId": COMMAND_ID}},
            {
                "InstanceIds": ["i-0123456789abcdef0"],
                "DocumentName": "LbFailover-UpdateBackends",
                "Comment": f"lbf-backends {checksum}",
                "Parameters": {"Backends": [backends], "Checksum": [checksum]},
                "TimeoutSeconds": 600,
            },
        )
        command = commands.send("i-0123456789abcdef0", backends, checksum, now=0.0)
        stub.assert_no_pending_responses()
    assert command.command_id == COMMAND_ID
    assert command.checksum == checksum


def test_the_longest_list_is_sent_whole_and_its_parameters_are_pinned() -> None:
    text, checksum = _worst_list()
    assert 8100 < len(text) <= backend_lists.MAX_LIST_BYTES
    assert text == " ".join(text.split(" "))  # single spaces, no stray whitespace
    client = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-1"
    ).client("ssm", config=CONFIG)
    with Stubber(client) as stub:
        stub.add_response(
            "send_command",
            {"Command": {"CommandId": COMMAND_ID}},
            {
                "InstanceIds": ["i-0123456789abcdef0"],
                "DocumentName": "LbFailover-UpdateBackends",
                "Comment": f"lbf-backends {checksum}",
                "Parameters": {"Backends": [text], "Checksum": [checksum]},
                "TimeoutSeconds": 600,
            },
        )
        SsmPushes(client, "LbFailover-UpdateBackends").send(
            "i-0123456789abcdef0", text, checksum, now=0.0
        )
        stub.assert_no_pending_responses()
    # And it matches the SSM document's own allowedPattern, which real SSM enforces.
    import json

    document = json.loads((ROOT / "infra/ssm/LbFailover-UpdateBackends.json").read_text())
    pattern = document["parameters"]["Backends"]["allowedPattern"]
    assert re.search(pattern, text)
    assert re.search(document["parameters"]["Checksum"]["allowedPattern"], checksum)


def test_a_list_one_byte_too_long_is_not_truncated_and_not_pushed() -> None:
    cloud = FakeCloud()
    cloud.ec2.add("lb", "127.0.0.11", name="lb1")
    for number in range(800):
        cloud.ec2.add(
            "web", str(ipaddress.ip_address("10.0.0.0") + number), tags={"lbf:port": "65535"}
        )
    report = run(cloud, settings(FAKE_CLOUD_ENV))

    assert cloud.calls.count("SendCommand") == 0
    assert BACKENDS not in cloud.ssm.parameters
    assert any("more than Parameter Store" in n for n in cloud.sns.messages)
    assert report.ok, report.errors


def test_hostile_web_tags_never_change_the_command_sent() -> None:
    """The full path: hostile web servers beside good ones, and the exact SendCommand parameters."""
    cloud = two_webs()
    for value in ("$(reboot)", "80;reboot", "80\n", "\u0668\u0660", "0", "70000", TEN_KIB):
        cloud.ec2.add("web", "127.0.1.50", tags={"lbf:port": value})
    cloud.ec2.add("web", "127.0.1.51", tags={"lbf:maintenance": "drain\n$(reboot)"})
    cloud.ec2.add("web", "127.0.1.52", tags={"lbf:role": "web;reboot"})
    run(cloud, settings(FAKE_CLOUD_ENV))

    sent = [d for op, d in cloud.calls.log if op == "SendCommand"]
    lb1, lb2 = list(cloud.ec2.instances)[:2]
    checksum = backend_lists.checksum(GOOD_LIST)
    assert sorted(sent) == sorted([(lb1, GOOD_LIST, checksum), (lb2, GOOD_LIST, checksum)])  # type: ignore[type-var]


# --- events ---------------------------------------------------------------------------------------


@pytest.fixture
def lambda_app(monkeypatch: pytest.MonkeyPatch) -> LambdaApp:
    """app.py with its AWS services replaced by the in-memory ones: no call leaves the process."""
    return LambdaApp(monkeypatch, small_cluster(webs=(), cluster=STAGE_CLUSTER))


WRONG_DETAILS: list[Any] = [
    None,
    [],
    "i-0123456789abcdef0",
    {},
    {"state": "stopped"},
    {"instance-id": "i-0123456789abcdef0"},
    {"instance-id": 123, "state": "stopped"},
    {"instance-id": ["i-0123456789abcdef0"], "state": "stopped"},
    {"instance-id": "i-123", "state": "stopped"},
    {"instance-id": "I-0123456789ABCDEF0", "state": "stopped"},
    {"instance-id": "i-0123456789abcdef0\n", "state": "stopped"},
    {"instance-id": "i-0123456789abcdef0; reboot", "state": "stopped"},
    {"instance-id": "i-$(reboot)", "state": "stopped"},
    {"instance-id": "i-0123456789abcdef0" + TEN_KIB, "state": "stopped"},
    {"instance-id": "i-0123456789abcdef0", "state": "Stopped"},
    {"instance-id": "i-0123456789abcdef0", "state": "stopped\n"},
    {"instance-id": "i-0123456789abcdef0", "state": None},
    {"instance-id": "i-0123456789abcdef0", "state": ["stopped"]},
    {"instance-id": "i-0123456789abcdef0", "state": {"name": "stopped"}},
    {"instance-id": "i-0123456789abcdef0", "state": 16},
]


@pytest.mark.parametrize("detail", WRONG_DETAILS, ids=lambda d: repr(d)[:40])
def test_an_event_of_the_wrong_shape_is_ignored_with_a_named_reason(
    lambda_app: LambdaApp, detail: Any
) -> None:
    cloud = lambda_app.cloud
    payload = lambda_app.invoke("on_instance_change", detail)

    assert set(payload) == {"ignored"}
    assert payload["ignored"].startswith(("detail.instance-id ", "detail.state "))
    assert cloud.calls.log == []  # not even a read


def test_an_event_without_a_detail_fails_before_the_handler_and_calls_nothing(
    lambda_app: LambdaApp,
) -> None:
    """Chalice builds its CloudWatchEvent before any middleware: a missing key is its KeyError."""
    module, cloud = lambda_app.module, lambda_app.cloud
    from chalice.test import Client

    with (
        Client(module.app, stage_name="dev", project_dir=str(ROOT / "infra" / "stages")) as client,
        pytest.raises(KeyError),
    ):
        client.lambda_.invoke("on_instance_change", {"source": "aws.ec2"})
    assert cloud.calls.log == []


def test_a_well_formed_event_runs_the_event_job(lambda_app: LambdaApp) -> None:
    """The control case: the same wiring with a good event does act (so the cases above are real)."""
    cloud = lambda_app.cloud
    lb1 = next(iter(cloud.ec2.instances))
    payload = lambda_app.invoke("on_instance_change", {"instance-id": lb1, "state": "running"})

    assert payload["job"] == "on_instance_change"
    assert cloud.calls.count("DescribeInstances") == 1
    assert os.environ.get("LBF_CLUSTER") != "web-dev"  # the stage's variables did not leak
