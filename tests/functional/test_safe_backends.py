"""No backend list holds an address no web server can serve from, as an operator sees it.

Through the command line on the in-memory AWS: a web server at the metadata service's address is
skipped with its reason in `status` and left out of `<prefix>/backends` and every push. Loopback
web servers are listed only when AWS is the local stand-in (a loopback AWS_ENDPOINT_URL, which the
kit's environment carries like the stand-in's); with AWS's own endpoints, as a deployed function
has them, they are skipped the same way.
"""

from __future__ import annotations

import pytest

from chalicelib.__main__ import main
from tests.kit.cloud import FAKE_CLOUD_ENV, FakeCloud, small_cluster
from tests.kit.settings import DEPLOYED, environment

STAND_IN = environment(FAKE_CLOUD_ENV)
# The same cluster seen by a controller talking to AWS's own endpoints.
DEPLOYED_ENV = environment(FAKE_CLOUD_ENV, DEPLOYED)
BACKENDS = "/lbf/demo/backends"


def cli(cloud: FakeCloud, environ: dict[str, str], *argv: str) -> int:
    return main(list(argv), environ=environ, services=cloud.services(), clock=cloud.clock)


def pushed_lists(cloud: FakeCloud) -> list[str]:
    return [str(detail) for op, detail in cloud.calls.log if op == "SendCommand"]


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("169.254.169.254", "link-local: the instance metadata service"),
        ("fe80::1", "link-local (169.254.0.0/16, fe80::/10)"),
        ("0.0.0.0", "unspecified (0.0.0.0/8, ::)"),
        ("224.0.0.251", "multicast (224.0.0.0/4, ff00::/8)"),
        ("255.255.255.255", "broadcast (255.255.255.255)"),
    ],
)
def test_a_web_server_at_an_unservable_address_never_enters_the_list(
    capsys: pytest.CaptureFixture[str], address: str, why: str
) -> None:
    cloud = small_cluster()
    bad = cloud.ec2.add("web", address)

    assert cli(cloud, STAND_IN, "reconcile") == 0
    assert cli(cloud, STAND_IN, "reconcile") == 0
    capsys.readouterr()
    cli(cloud, STAND_IN, "status", "--wide")  # its exit code is about serving, not this
    shown = capsys.readouterr().out

    assert cloud.ssm.parameters[BACKENDS] == "127.0.1.21:80 127.0.1.22:80 127.0.1.23:80"
    assert pushed_lists(cloud)
    assert not any(address in pushed for pushed in pushed_lists(cloud))
    [row] = [line for line in shown.splitlines() if bad in line]
    assert f"skipped: private address {address} is {why}: never a backend" in row
    # Never probed either: the probe would go to that address.
    assert all(bad not in keys for keys in cloud.prober.probed)


def test_loopback_web_servers_are_listed_when_aws_is_the_stand_in() -> None:
    cloud = small_cluster()

    assert cli(cloud, STAND_IN, "reconcile") == 0

    assert cloud.ssm.parameters[BACKENDS] == "127.0.1.21:80 127.0.1.22:80 127.0.1.23:80"


def test_loopback_web_servers_are_skipped_with_aws_own_endpoints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cloud = small_cluster()

    assert cli(cloud, DEPLOYED_ENV, "reconcile") == 0
    capsys.readouterr()
    cli(cloud, DEPLOYED_ENV, "status", "--wide")  # its exit code is about serving, not this
    shown = capsys.readouterr().out

    # No list at all rather than one sending the LBs' clients to the LBs themselves.
    assert BACKENDS not in cloud.ssm.parameters
    assert pushed_lists(cloud) == []
    for web in cloud.ec2.ids("web"):
        [row] = [line for line in shown.splitlines() if web in line]
        assert "is loopback (127.0.0.0/8, ::1): the LB itself: never a backend" in row
