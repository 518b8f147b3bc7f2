"""The stand-in's public addresses are loopback ones (LBF_LB_ADDRESS=public runs locally).

Each test has its own moto server: the option changes how every instance is launched.
"""

from __future__ import annotations

import http.client
import urllib.request
from pathlib import Path

import pytest

from chalicelib import jobs
from chalicelib.config import Settings
from chalicelib.services import aws_services
from standin.aws import free_port, local_aws
from standin.haproxy import LocalHaproxy, haproxy_binary
from standin.route53_dns import CachingResolver, local_route53
from standin.web import LocalWebServer
from tests.kit.cloud import FakeClock

DOMAIN = "public.example.com"
LB_PORT = 18580
WEB_PORT = 18581


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


def test_a_cluster_with_public_lb_addresses_runs_on_the_stand_in(
    servers: dict[str, LocalWebServer],
) -> None:
    """LBF_LB_ADDRESS=public (which LBF_DNS_FAILOVER=route53 needs): the controller probes the
    LBs and publishes them at their loopback public addresses, and a client resolving the active
    name through the data plane reaches an LB there."""
    cluster = "public"
    with local_aws(DOMAIN, public_addresses=True) as aws:
        settings = Settings.from_env(
            aws.controller_environment(
                cluster=cluster,
                domain=DOMAIN,
                lb_port=LB_PORT,
                web_port=WEB_PORT,
                LBF_PROBE_TIMEOUT="0.5",
                LBF_PROBE_INTERVAL="1",
                LBF_PROBE_ROUNDS="2",
            )
        )
        aws.launch("127.0.1.11", {"lbf:cluster": cluster, "lbf:role": "lb", "lbf:name": "lb1"})
        aws.launch("127.0.1.21", {"lbf:cluster": cluster, "lbf:role": "web"})
        # The LB answers on its public address only: a probe of the private one would fail.
        servers["lb"] = LocalWebServer("127.0.3.11", LB_PORT, body="lb\n").start()
        servers["web"] = LocalWebServer("127.0.1.21", WEB_PORT).start()
        report = jobs.reconcile(settings, aws_services(settings), FakeClock())
        assert report.ok, report.errors
        assert aws.a_record(f"lb.{DOMAIN}") == ("127.0.3.11",)
        with local_route53(aws, time_factor=0.02, propagation_seconds=0) as plane:
            client = CachingResolver(plane.address, plane.port)
            [address] = client.resolve(f"lb.{DOMAIN}")
            with urllib.request.urlopen(f"http://{address}:{LB_PORT}/", timeout=5) as response:
                assert response.read() == b"lb\n"
