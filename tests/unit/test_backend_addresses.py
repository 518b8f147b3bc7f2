"""Addresses that never enter a backend list (SPEC "Backend lists"; issue 19).

A web server whose address is link-local (the metadata service among them), unspecified,
multicast or broadcast is skipped with the reason, like a bad tag: never probed, never listed.
Loopback is refused too, except when AWS is the local stand-in (config.Settings.loopback_allowed),
where every instance is on 127.0.0.0/8.
"""

from __future__ import annotations

import pytest

from chalicelib.core.backends import refused_backend
from chalicelib.core.inventory import parse_instance
from chalicelib.core.model import Instance, Skipped
from tests.kit.settings import DEPLOYED, settings
from tests.kit.world import parse_rules, raw

REFUSED = [
    ("169.254.169.254", "link-local: the instance metadata service"),
    ("169.254.10.1", "link-local"),
    ("fe80::1", "link-local"),
    ("::ffff:169.254.169.254", "the instance metadata service"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("::", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("255.255.255.255", "broadcast"),
]
LOOPBACK = ["127.0.0.1", "127.0.1.21", "127.255.255.254", "::1", "::ffff:127.0.0.1"]
SERVABLE = ["10.0.0.10", "172.16.5.4", "192.168.1.1", "203.0.113.10", "2001:db8::10", "fd00::1"]

DEPLOYED_RULES = parse_rules(settings(DEPLOYED))
STAND_IN_RULES = parse_rules(settings())


def web(address: str) -> Instance | Skipped:
    return parse_instance(raw("i-0001", "web", private_ip=address), DEPLOYED_RULES)


@pytest.mark.parametrize(("address", "why"), REFUSED)
@pytest.mark.parametrize("loopback_allowed", [False, True])
def test_an_address_no_server_can_serve_from_is_refused(
    address: str, why: str, loopback_allowed: bool
) -> None:
    refused = refused_backend(address, loopback_allowed=loopback_allowed)
    assert refused is not None
    assert why in refused


@pytest.mark.parametrize("address", LOOPBACK)
def test_loopback_is_refused_unless_aws_is_the_stand_in(address: str) -> None:
    assert "loopback" in (refused_backend(address, loopback_allowed=False) or "")
    assert refused_backend(address, loopback_allowed=True) is None


@pytest.mark.parametrize("address", SERVABLE)
def test_private_and_public_addresses_are_backends(address: str) -> None:
    assert refused_backend(address, loopback_allowed=False) is None


@pytest.mark.parametrize(("address", "why"), REFUSED)
def test_a_web_server_at_such_an_address_is_skipped_without_its_address(
    address: str, why: str
) -> None:
    for rules in (DEPLOYED_RULES, STAND_IN_RULES):
        parsed = parse_instance(raw("i-0001", "web", private_ip=address), rules)
        assert isinstance(parsed, Skipped)
        assert why in parsed.reason
        assert parsed.reason.endswith(": never a backend")
        assert parsed.reason.startswith("private address ")
        # Never probed, and no entry of a published list is kept for it.
        assert parsed.address is None
        assert parsed.frozen is not None
        assert parsed.frozen.address is None


def test_a_loopback_web_server_is_skipped_by_a_deployed_controller_only() -> None:
    address = "127.0.1.21"
    deployed = parse_instance(raw("i-0001", "web", private_ip=address), DEPLOYED_RULES)
    stand_in = parse_instance(raw("i-0001", "web", private_ip=address), STAND_IN_RULES)

    assert isinstance(deployed, Skipped)
    assert deployed.reason == (
        "private address 127.0.1.21 is loopback (127.0.0.0/8, ::1): the LB itself: never a backend"
    )
    assert isinstance(stand_in, Instance)
    assert stand_in.address == address


def test_the_public_address_is_judged_when_the_pool_is_public() -> None:
    rules = parse_rules(settings(DEPLOYED, pool_address="public"))
    parsed = parse_instance(
        raw("i-0001", "web", public_ip="169.254.169.254", private_ip="10.0.0.1"), rules
    )
    assert isinstance(parsed, Skipped)
    assert parsed.reason.startswith("public address 169.254.169.254 is link-local")


def test_an_lb_is_not_judged_as_a_backend() -> None:
    # An LB's own address is published in DNS, never in a backend list; the stand-in's LBs and
    # a deployed one alike keep theirs.
    parsed = parse_instance(raw("i-0001", "lb", private_ip="10.0.0.5"), DEPLOYED_RULES)
    assert isinstance(parsed, Instance)


@pytest.mark.parametrize(
    ("environ", "allowed"),
    [
        ({}, True),  # the builder's loopback endpoint, as the stand-in's
        ({"AWS_ENDPOINT_URL": "http://localhost:5000"}, True),
        ({"AWS_ENDPOINT_URL": "http://[::1]:5000/"}, True),
        (
            {
                "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
                "AWS_ENDPOINT_URL_EC2": "http://127.0.0.2",
            },
            True,
        ),
        (DEPLOYED, False),  # AWS's own endpoints: a deployed function
        ({"AWS_ENDPOINT_URL": "https://ec2.eu-west-1.amazonaws.com"}, False),
        ({"AWS_ENDPOINT_URL": "http://10.0.0.5:4566"}, False),
        ({"AWS_ENDPOINT_URL": "http://127.0.0.1.example.com"}, False),
        ({"AWS_ENDPOINT_URL": ""}, False),
        ({"AWS_ENDPOINT_URL": "not a url"}, False),
        # One service sent elsewhere: its instances are not the stand-in's.
        ({"AWS_ENDPOINT_URL_EC2": "https://ec2.eu-west-1.amazonaws.com"}, False),
        ({"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, False),
        # A service's endpoint alone does not make AWS the stand-in.
        ({**DEPLOYED, "AWS_ENDPOINT_URL_LAMBDA": "http://127.0.0.1:9001"}, False),
    ],
)
def test_loopback_is_allowed_only_when_every_aws_endpoint_is_on_loopback(
    environ: dict[str, str | None], allowed: bool
) -> None:
    assert settings(environ).loopback_allowed is allowed
