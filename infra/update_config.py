"""Installs a new haproxy.cfg on every running load balancer of a cluster, one LB at a time.

    python infra/update_config.py --cluster web --file infra/lb/haproxy.cfg [--region eu-west-1]

User data runs at first boot only; this is how a changed configuration reaches running LBs. It
sends the SSM document LbFailover-UpdateConfig (infra/lb/update-config.sh: checked with
`haproxy -c` together with the LB's backend section, installed, reloaded, then gated on the LB
serving: a server of backend `web` up in the Runtime API, `/health` answering 200 and requests
through the frontend answered; otherwise rolled back, HAProxy reloaded or started again) to one
LB, waits until that LB reports that it serves, and only then goes on to the next. Standbys go
first and the LB holding the active role last (`lbf:state`), each group in natural name order, so
a configuration that only fails on a real LB is found on one that serves no clients. It stops at
the first LB that does not report success and serving: that LB is back on its previous file, and
the LBs after it are not touched.

Not part of the controller: it runs with the operator's credentials (ec2:DescribeInstances,
ssm:SendCommand on the document and the cluster's LBs, ssm:GetCommandInvocation). The output of
each LB's run goes to the CloudWatch Logs group of the cluster's pushes, /lbf/<cluster>/pushes.

Exit status: 0 every running LB has the file and serves; 1 an LB failed, did not serve with the
file (rolled back), or did not answer in time (the rest untouched); 2 bad arguments, an
unreadable or oversized file.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import ClientError, NoRegionError

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from chalicelib.core.inventory import natural_key  # noqa: E402
from chalicelib.core.names import push_log_group  # noqa: E402

DOCUMENT = "LbFailover-UpdateConfig"
# The document's maxChars for Config (infra/render_document.py CONFIG_MAX_CHARS).
MAX_ENCODED_CHARS = 16384
# The document's step has its own 300 s timeout; SSM's delivery timeout is this.
DELIVERY_TIMEOUT = 600
POLL_SECONDS = 2.0
TERMINAL = {"Success", "Failed", "TimedOut", "Cancelled", "Undeliverable", "Terminated"}
# The line update-config.sh prints once the LB serves with the new file: a success without it
# came from a document older than the serving check, which proves nothing about clients.
SERVING = "update-config: serving: "


class UsageError(Exception):
    """Bad arguments or file: nothing was sent (exit 2)."""


@dataclass(frozen=True)
class LoadBalancer:
    instance_id: str
    name: str
    active: bool


def encode(path: Path) -> tuple[str, str]:
    """The file as the document takes it: base64 text and the sha256 of the file's bytes."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"--file {path}: {exc.strerror or exc}") from exc
    if not data.strip():
        raise UsageError(f"--file {path} is empty")
    encoded = base64.b64encode(data).decode()
    if len(encoded) > MAX_ENCODED_CHARS:
        raise UsageError(
            f"--file {path} is {len(data)} bytes; the document takes at most "
            f"{MAX_ENCODED_CHARS * 3 // 4} (its Config parameter is base64, {MAX_ENCODED_CHARS} "
            "characters)"
        )
    return encoded, hashlib.sha256(data).hexdigest()


def running_lbs(ec2: Any, cluster: str) -> list[LoadBalancer]:
    """The cluster's running LBs, standbys first, the active one last, natural name order."""
    found: list[LoadBalancer] = []
    kwargs: dict[str, Any] = {
        "Filters": [
            {"Name": "tag:lbf:cluster", "Values": [cluster]},
            {"Name": "tag:lbf:role", "Values": ["lb"]},
            {"Name": "instance-state-name", "Values": ["running"]},
        ]
    }
    while True:
        page = ec2.describe_instances(**kwargs)
        for reservation in page.get("Reservations", []):
            for instance in reservation.get("Instances", []):
                tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                instance_id = instance["InstanceId"]
                found.append(
                    LoadBalancer(
                        instance_id=instance_id,
                        name=tags.get("lbf:name") or instance_id,
                        active=tags.get("lbf:state") == "active",
                    )
                )
        token = page.get("NextToken")
        if not token:
            break
        kwargs["NextToken"] = token
    return sorted(found, key=lambda lb: (lb.active, natural_key(lb.name), lb.instance_id))


def install_on(
    ssm: Any,
    lb: LoadBalancer,
    encoded: str,
    checksum: str,
    *,
    log_group: str,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> tuple[str, str, str, str]:
    """Sends the document to one LB and waits for its outcome: (status, command id, stdout,
    stderr)."""
    response = ssm.send_command(
        InstanceIds=[lb.instance_id],
        DocumentName=DOCUMENT,
        Comment=f"lbf-config {checksum}",
        Parameters={"Config": [encoded], "Checksum": [checksum]},
        TimeoutSeconds=DELIVERY_TIMEOUT,
        CloudWatchOutputConfig={
            "CloudWatchLogGroupName": log_group,
            "CloudWatchOutputEnabled": True,
        },
    )
    command_id = response["Command"]["CommandId"]
    deadline = clock() + DELIVERY_TIMEOUT + 300
    while True:
        sleep(POLL_SECONDS)
        try:
            invocation = ssm.get_command_invocation(CommandId=command_id, InstanceId=lb.instance_id)
        except ClientError as exc:
            # Right after sending, SSM may not know the invocation yet.
            if exc.response.get("Error", {}).get("Code") != "InvocationDoesNotExist":
                raise
            invocation = {"Status": "Pending"}
        status = str(invocation.get("Status", "Pending"))
        if status in TERMINAL:
            return (
                status,
                command_id,
                str(invocation.get("StandardOutputContent", "")),
                str(invocation.get("StandardErrorContent", "")),
            )
        if clock() > deadline:
            return f"still {status} after {DELIVERY_TIMEOUT + 300} s", command_id, "", ""


def update_cluster(
    ec2: Any,
    ssm: Any,
    cluster: str,
    path: Path,
    *,
    out: TextIO,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    encoded, checksum = encode(path)
    lbs = running_lbs(ec2, cluster)
    if not lbs:
        # Nothing to update is not a failure: LBs launched later take the file from user data.
        print(f"no running load balancer in cluster {cluster}: nothing to update", file=out)
        return 0
    log_group = push_log_group(cluster)
    print(
        f"installing {path} ({checksum[:12]}) on {len(lbs)} LB(s) of {cluster}, one at a time: "
        + ", ".join(lb.name for lb in lbs),
        file=out,
    )
    for done, lb in enumerate(lbs):
        try:
            status, command_id, stdout, stderr = install_on(
                ssm, lb, encoded, checksum, log_group=log_group, sleep=sleep, clock=clock
            )
        except ClientError as exc:
            # Refused by SSM (an agent that is not registered, a missing document, no
            # permission): this LB did not change, and the next ones are not tried either.
            error = exc.response.get("Error", {})
            status = f"refused by SSM: {error.get('Code')} {error.get('Message', '')}".strip()
            command_id, stdout, stderr = "none", "", ""
        serving = [line for line in stdout.splitlines() if line.startswith(SERVING)]
        if status == "Success" and serving:
            seen = serving[-1].removeprefix(SERVING)
            print(
                f"{lb.name} {lb.instance_id}: installed and serving: {seen} (command {command_id})",
                file=out,
            )
            continue
        if status == "Success":
            status = (
                "Success, but the LB did not report that it serves: is the stack lbf-document "
                "current (python3 infra/cloudformation/render.py, then deploy it)?"
            )
        print(f"{lb.name} {lb.instance_id}: {status} (command {command_id})", file=out)
        if stderr.strip():
            print("  " + stderr.strip().replace("\n", "\n  "), file=out)
        if command_id != "none":
            print(
                f"  output in CloudWatch Logs {log_group}, streams {command_id}/{lb.instance_id}/",
                file=out,
            )
        untouched = [other.name for other in lbs[done + 1 :]]
        if untouched:
            print("stopped; not sent to: " + ", ".join(untouched), file=out)
        return 1
    print(f"done: {len(lbs)} LB(s) run {path.name} {checksum[:12]}", file=out)
    return 0


def main(argv: Sequence[str] | None = None, *, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cluster", required=True, help="LBF_CLUSTER: the lbf:cluster tag")
    parser.add_argument("--file", required=True, type=Path, help="the new haproxy.cfg")
    parser.add_argument("--region", help="AWS region (default: the AWS CLI's configuration)")
    args = parser.parse_args(argv)
    try:
        import boto3

        session = boto3.session.Session(region_name=args.region)
        return update_cluster(
            session.client("ec2"), session.client("ssm"), args.cluster, args.file, out=out
        )
    except UsageError as exc:
        print(f"update_config: {exc}", file=sys.stderr)
        return 2
    except ClientError as exc:
        print(f"update_config: {exc}", file=sys.stderr)
        return 1
    except NoRegionError:
        print("update_config: no AWS region: pass --region or set AWS_REGION", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
