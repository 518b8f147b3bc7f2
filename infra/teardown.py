"""Remove one stage's controller and everything it left behind, in an order that cannot race it.

    python infra/teardown.py --stage prod --region eu-west-1 [--with-cluster-stack] \\
        [--with-network lbf-network] [--with-document] [--yes]
    python infra/teardown.py --network-only lbf-network --region eu-west-1 [--yes]

0. Refuse a domain another cluster owns: the `_lbf.<domain>` TXT's first string
   `"cluster=<name>"` names the owner; another name stops it (exit 2) before anything changes.
   A TXT written before that rule (labels only) is taken as this cluster's.
1. Stop the schedule: disable the stage stack's EventBridge rules (the minute schedule and the
   instance-change rule), then wait one controller timeout, so no run is left that could write a
   record, a parameter or a health check after they are gone.
2. Delete the stage stack `lb-failover-<stage>` (the functions, their roles, alarms, dashboard).
3. Delete the records the controller owns: the names listed in `_lbf.<domain>` (one quoted label
   each, after the owner's string), then that TXT record, in one change batch built from what the zone holds now.
4. Delete the parameters under the prefix (`/lbf/<cluster>/` unless LBF_PARAMETER_PREFIX).
5. Delete the cluster's Route 53 health checks: tagged `lbf:cluster=<cluster>` or made by it
   (their CallerReference names the cluster's digest).
6. Optionally the cluster stack `lbf-<cluster>` (LB instance profile, notice topic), then the
   network stack, but only once no instance has one of its security groups (it names them) and
   Lambda's network interfaces in the prober's security group are gone (Lambda releases them minutes after the function; the stack's deletion fails while they
   exist), and the document stack (shared by every cluster of the account and region).

`--network-only STACK` removes just a network stack, the last step of an upgrade from the NAT
design (or of a rollback to it): it refuses while a function still runs in the stack's subnets
(deploy the stage first) or an instance still has one of its security groups, then waits for
Lambda's interfaces and deletes the stack.

Cluster, domain, zone and prefix come from the stage in .chalice/config.json; options override.
Instances are the operator's: terminate them yourself (infra/DEPLOY.md). An operator tool under
infra/, outside the controller's Plan; bad input stops it before any AWS call (exit 2).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from botocore.exceptions import ClientError, WaiterError  # noqa: E402

from chalicelib.core.dns import RecordRules  # noqa: E402
from chalicelib.core.second_opinion import instance_of_reference  # noqa: E402
from infra.aws_errors import AWS_FAILURES, aws_problem, exit_status  # noqa: E402

APP_NAME = "lb-failover"
CONTROLLER_TIMEOUT_S = 90.0  # lambda_timeout: the longest a run started before step 1 lasts
ENI_WAIT_S = 45 * 60.0  # Lambda documents up to 20 minutes; twice that and then some
POLL_S = 15.0


class TeardownError(Exception):
    """Bad input or a step that cannot go on: the message says which and why."""


class NotOwner(TeardownError):
    """The domain's `_lbf` TXT names another cluster: nothing of it is this teardown's."""


# The `_lbf` TXT's first string names the cluster that owns the domain (SPEC, "Ownership is by
# cluster"); a TXT written before that rule has only labels.
OWNER_PREFIX = "cluster="


def read_ownership(values: Sequence[str]) -> tuple[str | None, list[str]]:
    """The owning cluster (None for a TXT without one) and the owned labels, from the TXT's
    strings as Route 53 returns them (quoted)."""
    strings = [value.strip().strip('"') for value in values]
    owner = None
    if strings and strings[0].startswith(OWNER_PREFIX):
        owner = strings.pop(0).removeprefix(OWNER_PREFIX)
    return owner, [s for s in strings if not s.startswith(OWNER_PREFIX)]


@dataclass(frozen=True)
class Target:
    stage: str
    region: str
    cluster: str
    domain: str
    zone_id: str
    prefix: str
    with_cluster_stack: bool = False
    network_stack: str = ""
    with_document: bool = False

    @property
    def stage_stack(self) -> str:
        return f"{APP_NAME}-{self.stage}"


def from_config(args: argparse.Namespace, project: Path) -> Target:
    """The stage's settings from .chalice/config.json, overridden by the options."""
    env: dict[str, str] = {}
    path = project / ".chalice" / "config.json"
    if path.exists():
        config = json.loads(path.read_text(encoding="utf-8"))
        stage = config.get("stages", {}).get(args.stage)
        if stage is not None:
            env = {
                **config.get("environment_variables", {}),
                **stage.get("environment_variables", {}),
            }
    cluster = args.cluster or env.get("LBF_CLUSTER", "")
    domain = (args.domain or env.get("LBF_DOMAIN", "")).lower().rstrip(".")
    zone_id = (args.zone_id or env.get("LBF_HOSTED_ZONE_ID", "")).removeprefix("/hostedzone/")
    for value, option, variable in (
        (cluster, "--cluster", "LBF_CLUSTER"),
        (domain, "--domain", "LBF_DOMAIN"),
        (zone_id, "--zone-id", "LBF_HOSTED_ZONE_ID"),
    ):
        if not value:
            raise TeardownError(
                f"{option}: not given, and stage {args.stage!r} of {path} sets no {variable}"
            )
    prefix = args.parameter_prefix or env.get("LBF_PARAMETER_PREFIX") or f"/lbf/{cluster}"
    if not prefix.startswith("/") or prefix.rstrip("/") in ("", "/lbf"):
        raise TeardownError(f"--parameter-prefix: {prefix!r} would reach beyond one cluster")
    return Target(
        stage=args.stage,
        region=args.region,
        cluster=cluster,
        domain=domain,
        zone_id=zone_id,
        prefix=prefix.rstrip("/"),
        with_cluster_stack=args.with_cluster_stack,
        network_stack=args.with_network,
        with_document=args.with_document,
    )


class Teardown:
    def __init__(
        self,
        target: Target,
        session: Any,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        say: Callable[[str], None] = print,
        drain_seconds: float = CONTROLLER_TIMEOUT_S,
        eni_wait_seconds: float = ENI_WAIT_S,
    ) -> None:
        self.target = target
        self._session = session
        self._sleep, self._clock, self._say = sleep, clock, say
        self._drain, self._eni_wait = drain_seconds, eni_wait_seconds

    def client(self, service: str) -> Any:
        return self._session.client(service, region_name=self.target.region)

    def run(self) -> None:
        t = self.target
        self.refuse_another_clusters_domain()
        self.stop_schedule()
        self.delete_stack(t.stage_stack)
        self.delete_records()
        self.delete_parameters()
        self.delete_health_checks()
        if t.with_cluster_stack:
            self.delete_stack(f"lbf-{t.cluster}")
        if t.network_stack:
            self.delete_network(t.network_stack)
        if t.with_document:
            self.delete_stack("lbf-document")

    # 0: before anything stops, so a mistaken --domain or stage leaves everything running
    def refuse_another_clusters_domain(self) -> None:
        t = self.target
        ownership = self.records().get((self.rules.ownership_fqdn, "TXT"))
        if ownership is None:
            return
        owner, _ = read_ownership([r["Value"] for r in ownership.get("ResourceRecords", [])])
        if owner is not None and owner != t.cluster:
            raise NotOwner(
                f"{t.domain} belongs to cluster {owner!r} ({self.rules.ownership_fqdn} TXT says "
                f"{OWNER_PREFIX}{owner}), not to {t.cluster!r}: nothing changed. Tear down "
                f"{owner}'s stage instead, or check --domain and the stage's LBF_DOMAIN"
            )

    @property
    def rules(self) -> RecordRules:
        # The controller's own naming: the TTL and active name play no part in it.
        return RecordRules(domain=self.target.domain, ttl=60, active_name="lb")

    def records(self) -> dict[tuple[str, str], dict[str, Any]]:
        """The zone's records by (name without the trailing dot, type); a failover pair's two
        records of one name and type (LBF_DNS_FAILOVER=route53) by type and SetIdentifier."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for page in (
            self.client("route53")
            .get_paginator("list_resource_record_sets")
            .paginate(HostedZoneId=self.target.zone_id)
        ):
            for record in page["ResourceRecordSets"]:
                kind = " ".join(filter(None, (record["Type"], record.get("SetIdentifier"))))
                found[(record["Name"].lower().rstrip("."), kind)] = record
        return found

    # 1
    def stop_schedule(self) -> None:
        events = self.client("events")
        rules = [
            r["PhysicalResourceId"]
            for r in self.stack_resources(self.target.stage_stack)
            if r["ResourceType"] == "AWS::Events::Rule" and r.get("PhysicalResourceId")
        ]
        for rule in rules:
            events.disable_rule(Name=rule)
            self._say(f"disabled the rule {rule}")
        if rules:
            self._say(f"waiting {self._drain:g} s for a run already started to end")
            self._sleep(self._drain)

    def stack_resources(self, stack: str) -> list[dict[str, Any]]:
        cloudformation = self.client("cloudformation")
        found: list[dict[str, Any]] = []
        try:
            for page in cloudformation.get_paginator("list_stack_resources").paginate(
                StackName=stack
            ):
                found += page["StackResourceSummaries"]
        except ClientError as exc:
            if "does not exist" in str(exc):
                self._say(f"no stack {stack}")
                return []
            raise
        return found

    # 2, 6
    def delete_stack(self, stack: str) -> None:
        cloudformation = self.client("cloudformation")
        try:
            cloudformation.describe_stacks(StackName=stack)
        except ClientError as exc:
            if "does not exist" in str(exc):
                self._say(f"no stack {stack}")
                return
            raise
        cloudformation.delete_stack(StackName=stack)
        try:
            cloudformation.get_waiter("stack_delete_complete").wait(
                StackName=stack, WaiterConfig={"Delay": 5, "MaxAttempts": 360}
            )
        except WaiterError as exc:
            raise TeardownError(
                f"the stack {stack} was not deleted: {self.why(stack, exc)}"
            ) from exc
        self._say(f"deleted the stack {stack}")

    def why(self, stack: str, exc: WaiterError) -> str:
        """The reason CloudFormation gives for the first resource it could not delete."""
        try:
            events = self.client("cloudformation").describe_stack_events(StackName=stack)
        except ClientError:
            return str(exc)
        for event in events["StackEvents"]:
            if event.get("ResourceStatus") == "DELETE_FAILED" and event.get("ResourceStatusReason"):
                return f"{event['LogicalResourceId']}: {event['ResourceStatusReason']}"
        return str(exc)

    # 3
    def delete_records(self) -> None:
        t, rules = self.target, self.rules
        route53 = self.client("route53")
        records = self.records()
        ownership = records.get((rules.ownership_fqdn, "TXT"))
        if ownership is None:
            self._say(f"no {rules.ownership_fqdn} TXT record: no records to delete")
            return
        owner, labels = read_ownership([r["Value"] for r in ownership.get("ResourceRecords", [])])
        if owner is not None and owner != t.cluster:  # taken over since step 0
            raise NotOwner(f"{t.domain} now belongs to cluster {owner!r}: its records stay")
        owned = {rules.fqdn(label) for label in labels}
        doomed = [r for (name, _), r in records.items() if name in owned and r["Type"] == "A"]
        changes = [{"Action": "DELETE", "ResourceRecordSet": r} for r in [*doomed, ownership]]
        route53.change_resource_record_sets(
            HostedZoneId=t.zone_id,
            ChangeBatch={"Comment": f"lb-failover teardown of {t.cluster}", "Changes": changes},
        )
        names = ", ".join(r["Name"].rstrip(".") for r in [*doomed, ownership])
        self._say(f"deleted the records {names}")

    # 4
    def delete_parameters(self) -> None:
        ssm = self.client("ssm")
        names = [
            p["Name"]
            for page in ssm.get_paginator("get_parameters_by_path").paginate(
                Path=self.target.prefix + "/", Recursive=True
            )
            for p in page["Parameters"]
        ]
        for start in range(0, len(names), 10):  # DeleteParameters takes at most 10 names
            ssm.delete_parameters(Names=names[start : start + 10])
        self._say(f"deleted {len(names)} parameters under {self.target.prefix}/")

    # 5
    def delete_health_checks(self) -> None:
        route53, cluster = self.client("route53"), self.target.cluster
        checks = [
            c
            for page in route53.get_paginator("list_health_checks").paginate()
            for c in page["HealthChecks"]
        ]
        ours = {
            c["Id"]
            for c in checks
            if instance_of_reference(cluster, str(c.get("CallerReference", ""))) is not None
        }
        ids = [c["Id"] for c in checks]
        for start in range(0, len(ids), 10):  # ListTagsForResources takes at most 10 ids
            answer = route53.list_tags_for_resources(
                ResourceType="healthcheck", ResourceIds=ids[start : start + 10]
            )
            for tagged in answer["ResourceTagSets"]:
                tags = {t["Key"]: t["Value"] for t in tagged.get("Tags", [])}
                if tags.get("lbf:cluster") == cluster:
                    ours.add(tagged["ResourceId"])
        for check_id in sorted(ours):
            route53.delete_health_check(HealthCheckId=check_id)
        self._say(f"deleted {len(ours)} Route 53 health checks of {cluster}")

    # 6
    def delete_network(self, network_stack: str) -> None:
        self.refuse_while_functions_use(network_stack)
        self.refuse_while_instances_use(network_stack)
        self.wait_for_lambda_interfaces(network_stack)
        self.delete_stack(network_stack)

    def refuse_while_instances_use(self, network_stack: str) -> None:
        """CloudFormation cannot delete a security group an instance still has: the stack would
        end DELETE_FAILED half-way. Name the instances instead, before anything is deleted."""
        groups = self.stack_groups(network_stack)
        if not groups:
            return
        users: dict[str, set[str]] = {}
        for page in (
            self.client("ec2")
            .get_paginator("describe_instances")
            .paginate(
                Filters=[
                    {"Name": "instance.group-id", "Values": groups},
                    {
                        "Name": "instance-state-name",
                        "Values": ["pending", "running", "stopping", "stopped"],
                    },
                ]
            )
        ):
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    held = {g["GroupId"] for g in instance.get("SecurityGroups", [])}
                    users[instance["InstanceId"]] = held & set(groups)
        if users:
            listed = ", ".join(f"{i} ({', '.join(sorted(g))})" for i, g in sorted(users.items()))
            raise TeardownError(
                f"instances still use the security groups of {network_stack}: {listed}. Move "
                "them to the other network stack's groups (aws ec2 modify-instance-attribute "
                "--groups) or terminate them, then run this again; nothing was deleted"
            )

    def stack_groups(self, stack: str) -> list[str]:
        return [
            r["PhysicalResourceId"]
            for r in self.stack_resources(stack)
            if r["ResourceType"] == "AWS::EC2::SecurityGroup" and r.get("PhysicalResourceId")
        ]

    def refuse_while_functions_use(self, network_stack: str) -> None:
        subnets = {
            r["PhysicalResourceId"]
            for r in self.stack_resources(network_stack)
            if r["ResourceType"] == "AWS::EC2::Subnet"
        }
        users = [
            f["FunctionName"]
            for page in self.client("lambda").get_paginator("list_functions").paginate()
            for f in page["Functions"]
            if subnets & set((f.get("VpcConfig") or {}).get("SubnetIds", []))
        ]
        if users:
            raise TeardownError(
                f"{', '.join(sorted(users))} still run(s) in the subnets of {network_stack}: "
                "deploy the stage that moves them out first (infra/DEPLOY.md, Upgrading)"
            )

    def wait_for_lambda_interfaces(self, network_stack: str) -> None:
        # Every group of the stack: the prober's, or the controller's of the NAT design.
        groups = self.stack_groups(network_stack)
        if not groups:
            return
        ec2 = self.client("ec2")
        deadline = self._clock() + self._eni_wait
        while True:
            interfaces = ec2.describe_network_interfaces(
                Filters=[{"Name": "group-id", "Values": groups}]
            )["NetworkInterfaces"]
            lambdas = [
                i["NetworkInterfaceId"]
                for i in interfaces
                if "Lambda" in i.get("Description", "")
                or "lambda" in str(i.get("RequesterId", "")).lower()
                or i.get("InterfaceType") == "lambda"
            ]
            if not lambdas:
                return
            if self._clock() >= deadline:
                raise TeardownError(
                    f"Lambda's network interfaces {', '.join(lambdas)} are still in "
                    f"{groups[0]} after {self._eni_wait:g} s: run again later to delete "
                    f"{network_stack}"
                )
            self._say(f"waiting for Lambda to release {len(lambdas)} network interface(s)")
            self._sleep(POLL_S)


def ask(prompt: str) -> str:
    """One line of standard input, read byte by byte: a script that pipes in its answers keeps
    the next line for the next command (Python's buffered stdin would swallow it)."""
    print(prompt, end="", flush=True)
    line = bytearray()
    while (byte := os.read(0, 1)) not in (b"", b"\n"):
        line += byte
    return line.decode(errors="replace").strip()


def parse(argv: Sequence[str] | None, project: Path) -> tuple[Target, bool]:
    parser = argparse.ArgumentParser(
        prog="python infra/teardown.py", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--stage", default="")
    parser.add_argument("--network-only", default="", metavar="STACK")
    parser.add_argument("--region", required=True)
    parser.add_argument("--cluster", default="")
    parser.add_argument("--domain", default="")
    parser.add_argument("--zone-id", default="")
    parser.add_argument("--parameter-prefix", default="")
    parser.add_argument("--with-cluster-stack", action="store_true", help="also lbf-<cluster>")
    parser.add_argument(
        "--with-network",
        default="",
        metavar="STACK",
        help="also the network stack (the VPC's last cluster)",
    )
    parser.add_argument("--with-document", action="store_true", help="also lbf-document")
    parser.add_argument("--yes", action="store_true", help="do not ask")
    parser.add_argument("--project", default=str(project))
    args = parser.parse_args(argv)
    if args.network_only:
        target = Target(
            stage="",
            region=args.region,
            cluster="",
            domain="",
            zone_id="",
            prefix="",
            network_stack=args.network_only,
        )
        return target, args.yes
    if not args.stage:
        raise TeardownError("--stage: which stage to tear down (or --network-only STACK)")
    return from_config(args, Path(args.project)), args.yes


def main(argv: Sequence[str] | None = None, session: Any = None, **options: Any) -> int:
    try:
        target, yes = parse(argv, ROOT)
    except TeardownError as exc:
        print(f"teardown: {exc}", file=sys.stderr)
        return 2
    if target.stage:
        print(
            f"tearing down stage {target.stage} (cluster {target.cluster}, {target.domain} in "
            f"{target.zone_id}, parameters {target.prefix}/) in {target.region}"
        )
        confirm = target.cluster
    else:
        print(f"removing the network stack {target.network_stack} in {target.region}")
        confirm = target.network_stack
    if not yes and ask(f"type {confirm!r} to go on: ") != confirm:
        print("teardown: not confirmed; nothing changed", file=sys.stderr)
        return 2
    if session is None:
        import boto3

        session = boto3.Session(region_name=target.region)
    try:
        work = Teardown(target, session, **options)
        if target.stage:
            work.run()
        else:
            work.delete_network(target.network_stack)
    except TeardownError as exc:
        print(f"teardown: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, NotOwner) else 1
    except AWS_FAILURES as exc:
        print(f"teardown: {aws_problem(exc)}", file=sys.stderr)
        return exit_status(exc)
    print("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
