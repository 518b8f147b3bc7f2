"""The stand-in's public addresses are loopback ones (LBF_LB_ADDRESS=public runs locally).

Each test has its own moto server: the option changes how every instance is launched.
"""

from __future__ import annotations

import http.client
from pathlib import Path

import pytest

from standin.aws import free_port, local_aws
from standin.haproxy import LocalHaproxy, haproxy_binary

DOMAIN = "public.example.com"


def test_instances_get_loopback_public_addresses_an_lb_listens_on(tmp_path: Path) -> None:
    with local_aws(DOMAIN, public_addresses=True) as aws:
        instance_id = aws.launch("127.0.1.31", {"Name": "lb"})
        ec2 = aws.client("ec2")
        described = ec2.describe_instances(InstanceIds=[instance_id])
        instance = described["Reservations"][0]["Instances"][0]
        assert instance["PublicIpAddress"] == "127.0.3.31"
        assert instance["PrivateIpAddress"] == "127.0.1.31"
        env = aws.controller_environment(cluster="public", domain=DOMAIN, lb_port=80, web_port=8080)
        assert env["LBF_LB_ADDRESS"] == "public"
        # EC2 drops the public address at a stop; the start brings the loopback one back.
        aws.set_state(instance_id, "stopped")
        aws.set_state(instance_id, "running")
        described = ec2.describe_instances(InstanceIds=[instance_id])
        assert described["Reservations"][0]["Instances"][0]["PublicIpAddress"] == "127.0.3.31"
    if haproxy_binary() is None:
        pytest.skip("haproxy is not installed")
    port = free_port("127.0.1.31")
    with LocalHaproxy(tmp_path, "127.0.1.31", port, public_address="127.0.3.31"):
        for address in ("127.0.1.31", "127.0.3.31"):
            # No list applied yet: HAProxy itself answers its health page with 503, on both.
            connection = http.client.HTTPConnection(address, port, timeout=5)
            connection.request("GET", "/health")
            assert connection.getresponse().status == 503
            connection.close()


def test_without_the_option_instances_have_no_public_address() -> None:
    """The demo's behaviour today: private addresses only."""
    with local_aws(DOMAIN) as aws:
        instance_id = aws.launch("127.0.1.32", {"Name": "lb"})
        described = aws.client("ec2").describe_instances(InstanceIds=[instance_id])
        assert "PublicIpAddress" not in described["Reservations"][0]["Instances"][0]
        env = aws.controller_environment(cluster="c", domain=DOMAIN, lb_port=80, web_port=8080)
        assert env["LBF_LB_ADDRESS"] == "private"
