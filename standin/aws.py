"""moto's server on 127.0.0.1, set up as an account the controller can manage.

The VPC is 127.0.0.0/16 so that every instance's private address is a loopback address a real
local server can bind to. Public addresses, which moto invents outside 127.0.0.0/8, are never used
or probed; with `public_addresses=True` instances get loopback public addresses instead
(standin/moto_fixes.loopback_public_addresses), so that LBF_LB_ADDRESS=public runs here too.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import boto3
import requests
from moto.server import ThreadedMotoServer

from chalicelib.adapters.clients import forget_clients
from standin.moto_fixes import loopback_public_addresses, route53_moves_back

REGION = "us-east-1"
SUBNET_CIDR = "127.0.1.0/24"
_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


class LocalAws:
    """One moto server; `environment()` is what a controller process needs to use it."""

    def __init__(self, *, public_addresses: bool = False) -> None:
        """`public_addresses`: launched instances get a public address (127.0.3.N for the
        private 127.0.1.N), from `start()` to `stop()`."""
        self.public_addresses = public_addresses
        self._fixes = ExitStack()
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.zone_id = ""
        self.subnet_id = ""
        self.image_id = ""
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def environment(self) -> dict[str, str]:
        return {**_ENV, "AWS_ENDPOINT_URL": self.endpoint}

    def controller_environment(
        self, *, cluster: str, domain: str, lb_port: int, web_port: int, **extra: str
    ) -> dict[str, str]:
        """The controller's settings against this stand-in; `extra` by full variable name.

        With the stand-in's endpoint, which is what lets its loopback web servers into backend
        lists (config.Settings.loopback_allowed).
        """
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "LBF_CLUSTER": cluster,
            "LBF_DOMAIN": domain,
            "LBF_HOSTED_ZONE_ID": self.zone_id,
            # Without loopback public addresses, moto's are not on this machine: use the private.
            "LBF_LB_ADDRESS": "public" if self.public_addresses else "private",
            "LBF_LB_CHECK": f"http://{{address}}:{lb_port}/health",
            "LBF_POOL_PORT": str(web_port),
            **extra,
        }

    def start(self) -> None:
        # moto's server logs every request through werkzeug; the demo prints its own timeline.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server.start()
        if self.public_addresses:
            self._fixes.enter_context(loopback_public_addresses())
        os.environ.update(self.environment())
        forget_clients()

    def stop(self) -> None:
        self._server.stop()
        self._fixes.close()
        forget_clients()

    def reset(self) -> None:
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=5)

    def client(self, service: str) -> Any:
        """One client per service, made once: each costs 150-450 ms, and the demo, the tests and
        the benchmarks poll with them while the controller's timing matters."""
        with self._lock:
            made = self._clients.get(service)
            if made is None:
                made = boto3.client(service, endpoint_url=self.endpoint, region_name=REGION)  # type: ignore[call-overload]
                self._clients[service] = made
            return made

    def prepare(self, domain: str, *, ec2: bool = True) -> None:
        """A hosted zone for the domain and (with `ec2`) a loopback VPC to launch instances into.

        Without `ec2` only the zone: moto's first EC2 calls take seconds (tests of Route 53 alone).
        """
        route53 = self.client("route53")
        zone = route53.create_hosted_zone(Name=domain + ".", CallerReference=domain)
        self.zone_id = zone["HostedZone"]["Id"].split("/")[-1]
        if ec2:
            self._prepare_ec2()

    def _prepare_ec2(self) -> None:
        ec2 = self.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="127.0.0.0/16")["Vpc"]["VpcId"]
        self.subnet_id = ec2.create_subnet(VpcId=vpc, CidrBlock=SUBNET_CIDR)["Subnet"]["SubnetId"]
        if self.public_addresses:
            ec2.modify_subnet_attribute(
                SubnetId=self.subnet_id, MapPublicIpOnLaunch={"Value": True}
            )
        images = ec2.describe_images(Owners=["amazon"])["Images"]
        self.image_id = images[0]["ImageId"]

    def launch(self, address: str, tags: dict[str, str]) -> str:
        ec2 = self.client("ec2")
        reservation = ec2.run_instances(
            ImageId=self.image_id,
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.micro",
            SubnetId=self.subnet_id,
            PrivateIpAddress=address,
            TagSpecifications=[
                {
                    "ResourceType": "instance",
                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                }
            ],
        )
        return str(reservation["Instances"][0]["InstanceId"])

    def set_state(self, instance_id: str, state: str) -> None:
        ec2 = self.client("ec2")
        if state == "stopped":
            ec2.stop_instances(InstanceIds=[instance_id])
        elif state == "running":
            ec2.start_instances(InstanceIds=[instance_id])
        elif state == "terminated":
            ec2.terminate_instances(InstanceIds=[instance_id])
        else:
            raise ValueError(f"cannot move an instance to {state!r}")

    def tags(self, instance_id: str) -> dict[str, str]:
        reservations = self.client("ec2").describe_instances(InstanceIds=[instance_id])
        instance = reservations["Reservations"][0]["Instances"][0]
        return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}

    def a_record(self, name: str) -> tuple[str, ...]:
        """The values of an A record, as Route 53 (moto) holds them now."""
        found = self.client("route53").list_resource_record_sets(
            HostedZoneId=self.zone_id, StartRecordName=name + ".", StartRecordType="A"
        )["ResourceRecordSets"]
        values: list[str] = []
        for item in found:
            if item["Name"].rstrip(".") == name and item["Type"] == "A":
                # moto can hold two record sets for one name after a CREATE over an existing
                # one; report every value so a duplicate shows up instead of hiding.
                values += [r["Value"] for r in item.get("ResourceRecords", [])]
        return tuple(values)

    def parameter(self, name: str) -> str | None:
        try:
            return str(self.client("ssm").get_parameter(Name=name)["Parameter"]["Value"])
        except self.client("ssm").exceptions.ParameterNotFound:
            return None


@contextmanager
def local_aws(
    domain: str, *, public_addresses: bool = False, ec2: bool = True
) -> Iterator[LocalAws]:
    aws = LocalAws(public_addresses=public_addresses)
    saved = {k: os.environ.get(k) for k in (*_ENV, "AWS_ENDPOINT_URL")}
    aws.start()
    try:
        with route53_moves_back():
            aws.prepare(domain, ec2=ec2)
            yield aws
    finally:
        # moto's backends belong to the process, not to the server: what this stand-in created
        # would otherwise still be there for the next test's mock_aws or server.
        aws.reset()
        aws.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
