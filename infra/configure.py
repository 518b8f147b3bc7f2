"""Write a stage of `.chalice/config.json` and its two IAM policies from a few inputs.

    python infra/configure.py --stage prod --cluster web --domain edge.example.com \\
        --region eu-west-1 --subnets subnet-0a1b,subnet-0c2d --security-group sg-0e3f \\
        [--zone-id Z0123456789ABC] [--pool-address private] [--lb-address public] \\
        [--set LBF_PROBE_INTERVAL=10 ...] [--xray] [--layer-arn ARN] [--project DIR]
    python infra/configure.py --rollback [--project DIR]

Everything the stage needs that can be looked up is looked up, read-only: the account (STS), the
hosted zone (Route 53: public, and the zone that really holds the domain), the Powertools layer
of the pinned version for the functions' architecture (AWS's public SSM parameter). The rest
follows from the inputs: the notice topic's ARN (cluster.yaml names it), the policies' ARNs and
conditions, the prober's lambda_timeout (from the probe settings). Other settings of the stage
(any `LBF_*` variable set before, memory sizes) are kept, so running it again after a change only
changes what the inputs change. What it would write passes the controller's own validation
(`Settings.from_env`) or is not written.

The prober function (probe_private) gets the subnets and security group when some target is
probed at its private address (LBF_POOL_ADDRESS or LBF_LB_ADDRESS private, by option or by --set:
one answer each); when none is, it is deployed idle, outside any VPC, and the controllers never
invoke it.

The files are this checkout's and never tracked (.gitignore); the ones a run replaces go to
`.chalice/previous/`, and `--rollback` puts them back. A new cluster's name follows
core.names.NEW_CLUSTER; an existing cluster (a stage runs it, or its stack lbf-<cluster> exists)
keeps its name, with a warning.

An operator tool: it lives under infra/, outside the controller's Plan, and changes only files.
Bad input stops it before any AWS call with a message naming the option (exit 2).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from botocore.exceptions import ClientError  # noqa: E402

from chalicelib.config import Settings  # noqa: E402
from chalicelib.config.reading import ConfigError  # noqa: E402
from chalicelib.core.names import (  # noqa: E402
    CLUSTER,
    HOSTED_ZONE_ID,
    HOSTED_ZONE_PREFIX,
    NEW_CLUSTER_FORM,
    STACK_NAME,
    STAGE,
    TOPIC_NAME,
    cluster_stack_name,
    is_label,
    is_new_cluster_name,
    notice_topic_name,
)
from chalicelib.core.timing import PROBER_INVOKE_SECONDS  # noqa: E402
from infra.aws_errors import AWS_FAILURES, aws_problem, exit_status  # noqa: E402

APP_NAME = "lb-failover"
ARCHITECTURE = "arm64"  # Graviton: 20% less per GB-second than x86_64, same code
CONTROLLERS = ("reconcile", "on_instance_change")
PROBER = "probe_private"
PROBER_LOGICAL_ID = "ProbePrivate"  # chalice's CloudFormation name for probe_private
DOCUMENT = "LbFailover-UpdateBackends"
POWERTOOLS_ACCOUNT = "017000801446"
# The layer version of each Powertools release, for the pin in requirements-dev.txt, as written
# into the committed example stages. Source: the "Lambda layer" table of Powertools' documentation
# (docs/index.md), whose newest entry found sets layer 27 for x86_64 and arm64 alike; that table
# does not say which release a layer version carries. The authority is AWS's public parameter
# `layer_parameter(version)`, which configure.py reads and writes into a real stage. The test
# suite holds the examples to this table, so raising the pin without updating it fails there.
POWERTOOLS_LAYER_VERSIONS = {"3.37.0": 27}
# Sizes from bench/sizing.py on the committed measurements (cold start, probe CPU); kept when the
# stage already has its own.
DEFAULT_MEMORY_MB = {"traced": 256, "untraced": 192, PROBER: 384}
CONTROLLER_TIMEOUT_S = 90
# The network-interface actions Lambda takes with the prober's role, and the prober never needs.
LAMBDA_ONLY_ACTIONS = (
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)
# What configure checks the settings with before the lookups have found the real values: any
# well-formed zone id and account do, since the tool writes those two itself.
_UNLOOKED_ACCOUNT = "000000000000"
_UNLOOKED_ZONE = "Z00000000000000"

_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]")
_SUBNET = re.compile(r"subnet-[0-9a-f]{8,17}")
_GROUP = re.compile(r"sg-[0-9a-f]{8,17}")
_VARIABLE = re.compile(r"(LBF_[A-Z0-9_]+|POWERTOOLS_[A-Z_]+)=(.*)", re.S)
_OWNED = {  # written from the inputs; --set cannot override them
    "LBF_CLUSTER",
    "LBF_DOMAIN",
    "LBF_HOSTED_ZONE_ID",
    "LBF_SNS_TOPIC_ARN",
    "LBF_PROBER_FUNCTION",  # set by the stack template from the function itself
}


class ConfigureError(Exception):
    """Bad input or a lookup that refuses: the message names the option."""


@dataclass(frozen=True)
class Inputs:
    stage: str
    cluster: str
    domain: str
    region: str
    zone_id: str = ""
    subnets: tuple[str, ...] = ()
    security_group: str = ""
    pool_address: str = "private"  # "": not given (check() takes --set's, else the default)
    lb_address: str = "public"
    # X-Ray is opt-in on every stage: traced, the controller needs 256 MB instead of 192 to start
    # as fast, and bills that for the whole minute of every run (bench/results/latest.md, cost).
    xray: bool = False
    variables: dict[str, str] = field(default_factory=dict)
    layer_arn: str = ""

    @property
    def private_targets(self) -> bool:
        return "private" in (self.pool_address, self.lb_address)

    @property
    def traced(self) -> bool:
        return self.xray


@dataclass(frozen=True)
class Looked:
    """What the lookups found."""

    account: str
    zone_id: str
    layer_arn: str
    warnings: tuple[str, ...] = ()


# --- input checks (no AWS call) -------------------------------------------------------------


def normal_domain(name: str) -> str:
    return name.strip().lower().rstrip(".")


def check(inputs: Inputs) -> Inputs:
    if not STAGE.fullmatch(inputs.stage):
        raise ConfigureError(
            f"--stage: {inputs.stage!r} is not a stage name (1-32 of letters, digits, -: it "
            "names the stack lb-failover-<stage>, which takes no _)"
        )
    if not CLUSTER.fullmatch(inputs.cluster):
        raise ConfigureError(f"--cluster: {inputs.cluster!r} is not a valid lbf:cluster value")
    # A name outside NEW_CLUSTER is an existing cluster's or refused: see existing_cluster().
    domain = normal_domain(inputs.domain)
    labels = domain.split(".")
    if len(labels) < 2 or not all(is_label(label) for label in labels):
        raise ConfigureError(f"--domain: {inputs.domain!r} is not a domain name")
    if not _REGION.fullmatch(inputs.region):
        raise ConfigureError(f"--region: {inputs.region!r} is not a region name")
    zone_id = inputs.zone_id.strip()
    if zone_id and not HOSTED_ZONE_ID.fullmatch(zone_id.removeprefix(HOSTED_ZONE_PREFIX)):
        raise ConfigureError(f"--zone-id: {inputs.zone_id!r} is not a hosted zone id")
    variables = dict(inputs.variables)
    addresses = {
        option: address(option, variable, given, variables.pop(variable, None), default)
        for option, variable, given, default in (
            ("--pool-address", "LBF_POOL_ADDRESS", inputs.pool_address, "private"),
            ("--lb-address", "LBF_LB_ADDRESS", inputs.lb_address, "public"),
        )
    }
    inputs = replace(
        inputs, pool_address=addresses["--pool-address"], lb_address=addresses["--lb-address"]
    )
    subnets = tuple(s.strip() for s in inputs.subnets if s.strip())
    for subnet in subnets:
        if not _SUBNET.fullmatch(subnet):
            raise ConfigureError(f"--subnets: {subnet!r} is not a subnet id")
    group = inputs.security_group.strip()
    if group and not _GROUP.fullmatch(group):
        raise ConfigureError(f"--security-group: {group!r} is not a security group id")
    if inputs.private_targets:
        if len(set(subnets)) < 2:
            raise ConfigureError(
                "--subnets: private targets are probed from the VPC: give the two private "
                "subnets of the network stack (ProberSubnetIds), comma-separated"
            )
        if not group:
            raise ConfigureError(
                "--security-group: private targets are probed from the VPC: give the network "
                "stack's ProberSecurityGroupId"
            )
    elif subnets or group:
        raise ConfigureError(
            "--subnets/--security-group: no target is private (LBF_POOL_ADDRESS and "
            "LBF_LB_ADDRESS public), so the prober stays idle outside any VPC: leave them out"
        )
    for name in variables:
        if name in _OWNED:
            raise ConfigureError(f"--set: {name} comes from the other options, not from --set")
    if inputs.layer_arn:
        check_layer_arn(inputs.layer_arn, inputs.region, "--layer-arn")
    return replace(
        inputs,
        domain=domain,
        zone_id=zone_id.removeprefix("/hostedzone/"),
        subnets=subnets,
        security_group=group,
        variables=variables,
    )


def address(option: str, variable: str, given: str, set_value: str | None, default: str) -> str:
    """One address setting from its option or its `--set`, never two different answers: the
    prober's place (in the VPC or idle) follows from what is written, so they must agree."""
    flag = given.strip().lower()
    via_set = (set_value or "").strip().lower()
    for value, source in ((flag, option), (via_set, f"--set {variable}")):
        if value and value not in ("private", "public"):
            raise ConfigureError(f"{source}: {value!r} is neither private nor public")
    if flag and via_set and flag != via_set:
        raise ConfigureError(
            f"{option} {flag} and --set {variable}={via_set} contradict each other: give one"
        )
    return flag or via_set or default


# Stands for the prober's name, which CloudFormation gives it at deploy time (the merge template).
DEPLOYED_PROBER = "lb-failover-ProbePrivate"


def settings(inputs: Inputs, environment: dict[str, str]) -> Settings:
    """The controller's own validation of what configure writes: a stage it accepts here is one
    whose every run starts. The error names where the bad value came from. Validated as
    deployed: the merge template hands the controllers LBF_PROBER_FUNCTION, and a path through
    the prober function must fit its interval with the invoke's margin (SPEC "Time")."""
    try:
        return Settings.from_env({"LBF_PROBER_FUNCTION": DEPLOYED_PROBER, **environment})
    except ConfigError as exc:
        if exc.variable in inputs.variables:
            source = "--set"
        elif exc.variable in ("LBF_POOL_ADDRESS", "LBF_LB_ADDRESS", *_OWNED):
            source = "the options"
        else:
            source = f"stage {inputs.stage} of .chalice/config.json (kept; --set it anew)"
        raise ConfigureError(f"{source}: {exc}") from exc


def prober_timeout(probe: Settings) -> int:
    """The prober's lambda_timeout (whole seconds): a round's probes end within LBF_PROBE_TIMEOUT
    and the controller waits PROBER_INVOKE_SECONDS more for the answer, so a shorter limit kills a
    prober whose target hangs, and the controller takes every such round as the prober's fault.
    At least the interval of the path it serves (LBF_PROBE_INTERVAL where the LBs are private,
    else LBF_POOL_INTERVAL: the pool alone), which leaves room for a cold start in the VPC."""
    wait = math.ceil(probe.probe_timeout + PROBER_INVOKE_SECONDS)
    interval = probe.probe_interval if probe.lbs_through_prober else probe.pool_interval
    return max(wait, math.floor(interval))


def runtime() -> str:
    """chalice packages for the Python that runs it: the layer must be built for the same."""
    return f"python{sys.version_info.major}.{sys.version_info.minor}"


def check_interpreter(project: Path) -> None:
    """Refuse a Python other than the project's virtualenv's (`make setup`): chalice, which runs
    there, packages the functions for that Python, and the layer must be built for the same."""
    config = project / ".venv" / "pyvenv.cfg"
    if not config.exists():
        print(
            f"configure: warning: no {project / '.venv'} (make setup): the layer is for "
            f"{runtime()}, the Python running this; chalice must package with the same",
            file=sys.stderr,
        )
        return
    found = re.search(
        r"^version(?:_info)?\s*=\s*([0-9]+)\.([0-9]+)", config.read_text(encoding="utf-8"), re.M
    )
    packaging = f"python{found[1]}.{found[2]}" if found else "unknown"
    if packaging != runtime():
        raise ConfigureError(
            f"this is {runtime()} ({sys.executable}), the project's .venv is {packaging}: run "
            f"{project / '.venv' / 'bin' / 'python'} infra/configure.py"
        )


def pinned_powertools(project: Path = ROOT) -> str:
    for line in (project / "requirements-dev.txt").read_text(encoding="utf-8").splitlines():
        name, _, version = line.split("#")[0].strip().partition("==")
        if name.split("[")[0].strip() == "aws-lambda-powertools":
            return version.strip()
    raise ConfigureError("requirements-dev.txt pins no aws-lambda-powertools version")


def layer_parameter(version: str, architecture: str = ARCHITECTURE, python: str = "") -> str:
    """AWS's public parameter that holds the layer ARN of one Powertools release."""
    python = python or runtime()
    if not python.startswith("python3."):
        python = "python3." + python.removeprefix("python3")
    return f"/aws/service/powertools/python/{architecture}/{python}/{version}"


def check_layer_arn(arn: str, region: str, option: str) -> str:
    compact = runtime().replace(".", "")
    pattern = (
        rf"arn:aws:lambda:{re.escape(region)}:{POWERTOOLS_ACCOUNT}:layer:"
        rf"AWSLambdaPowertoolsPythonV3-{compact}-{ARCHITECTURE}:[0-9]+"
    )
    if not re.fullmatch(pattern, arn):
        raise ConfigureError(
            f"{option}: {arn!r} is not the Powertools layer for {compact} on {ARCHITECTURE} in "
            f"{region}"
        )
    return arn


# --- lookups (read-only AWS calls) ----------------------------------------------------------


def find_zone(route53: Any, domain: str, zone_id: str) -> str:
    """The public zone that holds `domain`: the given one, checked, or the one found by name.

    Refused: a private zone (resolvers on the internet never see it), a zone whose name is not
    the domain or a parent of it, and a zone that a more specific public zone of the account
    overrides for the domain (its records there would be shadowed).
    """
    zones: list[dict[str, Any]] = []
    for page in route53.get_paginator("list_hosted_zones").paginate():
        zones += page["HostedZones"]

    def name(zone: dict[str, Any]) -> str:
        return normal_domain(zone["Name"])

    def holds(zone: dict[str, Any]) -> bool:
        return domain == name(zone) or domain.endswith("." + name(zone))

    public = [z for z in zones if not z.get("Config", {}).get("PrivateZone", False)]
    if zone_id:
        try:
            found = route53.get_hosted_zone(Id=zone_id)["HostedZone"]
        except route53.exceptions.NoSuchHostedZone as exc:
            raise ConfigureError(f"--zone-id: the account has no hosted zone {zone_id}") from exc
        if found.get("Config", {}).get("PrivateZone", False):
            raise ConfigureError(
                f"--zone-id: {zone_id} is a private hosted zone; clients resolve the active "
                "record on the internet: give a public zone"
            )
        if not holds(found):
            raise ConfigureError(
                f"--zone-id: {zone_id} is the zone {name(found)}, which does not hold "
                f"{domain} (the domain must be the zone's name or end in .{name(found)})"
            )
        deeper = [z for z in public if holds(z) and len(name(z)) > len(name(found))]
        if deeper:
            raise ConfigureError(
                f"--zone-id: {domain} is delegated to the more specific zone {name(deeper[0])} "
                f"({deeper[0]['Id'].split('/')[-1]}): records in {name(found)} would be shadowed"
            )
        return zone_id
    candidates = [z for z in public if holds(z)]
    if not candidates:
        private = [z for z in zones if holds(z)]
        why = " (only a private zone holds it)" if private else ""
        raise ConfigureError(f"--domain: no public hosted zone holds {domain}{why}; --zone-id")
    longest = max(len(name(z)) for z in candidates)
    best = [z for z in candidates if len(name(z)) == longest]
    if len(best) > 1:
        ids = ", ".join(z["Id"].split("/")[-1] for z in best)
        raise ConfigureError(f"--zone-id: several public zones are named {name(best[0])}: {ids}")
    return str(best[0]["Id"]).split("/")[-1]


def find_layer(ssm: Any, version: str, region: str) -> str:
    parameter = layer_parameter(version)
    try:
        value = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound as exc:
        raise ConfigureError(
            f"--layer-arn: AWS publishes no Powertools {version} layer for {runtime()} on "
            f"{ARCHITECTURE} in {region} ({parameter})"
        ) from exc
    return check_layer_arn(str(value), region, f"the parameter {parameter}")


def existing_cluster(inputs: Inputs, config: dict[str, Any], session: Any | None) -> str | None:
    """A warning for an existing cluster whose name a new one could not take (it keeps it: its
    instances, tags and instance profile carry it), None for a name a new cluster may take.
    Existing: a stage of config.json runs it, or its cluster stack exists (asked only then)."""
    if is_new_cluster_name(inputs.cluster):
        return None
    warning = (
        f"cluster {inputs.cluster!r} is an existing cluster's name, kept; a new cluster could "
        f"not take it: {NEW_CLUSTER_FORM}"
    )
    for stage in config.get("stages", {}).values():
        if stage.get("environment_variables", {}).get("LBF_CLUSTER") == inputs.cluster:
            return warning
    stack = cluster_stack_name(inputs.cluster)
    if STACK_NAME.fullmatch(stack):  # else no stack of that name can exist
        if session is None:
            return warning  # asked again once AWS may be
        try:
            session.client("cloudformation").describe_stacks(StackName=stack)
        except ClientError as exc:
            if "does not exist" not in str(exc):
                raise
        else:
            return warning
    raise ConfigureError(f"--cluster: {inputs.cluster!r} for a new cluster: {NEW_CLUSTER_FORM}")


def look_up(
    inputs: Inputs, session: Any, project: Path = ROOT, config: dict[str, Any] | None = None
) -> Looked:
    warning = existing_cluster(inputs, config or {}, session)
    account = str(session.client("sts").get_caller_identity()["Account"])
    zone_id = find_zone(session.client("route53"), inputs.domain, inputs.zone_id)
    layer = inputs.layer_arn or find_layer(
        session.client("ssm"), pinned_powertools(project), inputs.region
    )
    return Looked(
        account=account,
        zone_id=zone_id,
        layer_arn=layer,
        warnings=(warning,) if warning else (),
    )


# --- what gets written (pure) ---------------------------------------------------------------


def topic_arn(inputs: Inputs, account: str) -> str | None:
    """The notice topic's ARN; None for an existing cluster whose name no topic can hold."""
    name = notice_topic_name(inputs.cluster)
    if not TOPIC_NAME.fullmatch(name):
        return None
    return f"arn:aws:sns:{inputs.region}:{account}:{name}"


def parameter_prefix(inputs: Inputs, kept: dict[str, str]) -> str:
    return kept.get("LBF_PARAMETER_PREFIX") or f"/lbf/{inputs.cluster}"


def controller_policy(
    inputs: Inputs,
    looked: Looked,
    prefix: str,
    document: str = DOCUMENT,
    environment: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The controllers' policy; `environment` (the stage's variables) adds what an option calls:
    the Route 53 health checks, and for the failover pair the history it reads."""
    region, account, cluster = inputs.region, looked.account, inputs.cluster
    ec2, ssm = f"arn:aws:ec2:{region}:{account}", f"arn:aws:ssm:{region}:{account}"
    zone = f"arn:aws:route53:::hostedzone/{looked.zone_id}"
    parameters = f"{ssm}:parameter{prefix}"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ReadInventory",
            "Effect": "Allow",
            "Action": ["ec2:DescribeInstances", "ec2:DescribeAddresses"],
            "Resource": "*",
        },
        {
            "Sid": "TagClusterInstances",
            "Effect": "Allow",
            "Action": "ec2:CreateTags",
            "Resource": f"{ec2}:instance/*",
            "Condition": {
                "StringEquals": {"ec2:ResourceTag/lbf:cluster": cluster},
                "ForAllValues:StringEquals": {"aws:TagKeys": ["lbf:health", "lbf:probe"]},
                "Null": {"aws:TagKeys": "false"},
            },
        },
        {
            "Sid": "TagClusterLoadBalancers",
            "Effect": "Allow",
            "Action": "ec2:CreateTags",
            "Resource": f"{ec2}:instance/*",
            "Condition": {
                "StringEquals": {
                    "ec2:ResourceTag/lbf:cluster": cluster,
                    "ec2:ResourceTag/lbf:role": "lb",
                },
                "ForAllValues:StringEquals": {
                    "aws:TagKeys": [
                        "lbf:name",
                        "lbf:health",
                        "lbf:probe",
                        "lbf:state",
                        "lbf:backends",
                    ]
                },
                "Null": {"aws:TagKeys": "false"},
            },
        },
        {
            "Sid": "MoveClusterElasticIp",
            "Effect": "Allow",
            "Action": "ec2:AssociateAddress",
            "Resource": f"{ec2}:elastic-ip/*",
            "Condition": {"StringEquals": {"ec2:ResourceTag/lbf:cluster": cluster}},
        },
        {
            "Sid": "MoveElasticIpToClusterLoadBalancers",
            "Effect": "Allow",
            "Action": "ec2:AssociateAddress",
            "Resource": f"{ec2}:instance/*",
            "Condition": {
                "StringEquals": {
                    "ec2:ResourceTag/lbf:cluster": cluster,
                    "ec2:ResourceTag/lbf:role": "lb",
                }
            },
        },
        {
            "Sid": "ReadZoneRecords",
            "Effect": "Allow",
            "Action": "route53:ListResourceRecordSets",
            "Resource": zone,
        },
        {
            "Sid": "ChangeClusterRecords",
            "Effect": "Allow",
            "Action": "route53:ChangeResourceRecordSets",
            "Resource": zone,
            "Condition": {
                "ForAllValues:StringLike": {
                    "route53:ChangeResourceRecordSetsNormalizedRecordNames": [f"*.{inputs.domain}"]
                },
                "ForAllValues:StringEquals": {
                    "route53:ChangeResourceRecordSetsRecordTypes": ["A", "TXT"]
                },
            },
        },
        {
            "Sid": "WatchRecordChanges",
            "Effect": "Allow",
            "Action": "route53:GetChange",
            "Resource": "arn:aws:route53:::change/*",
        },
        {
            "Sid": "PushBackendsDocument",
            "Effect": "Allow",
            "Action": "ssm:SendCommand",
            "Resource": f"{ssm}:document/{document}",
        },
        {
            "Sid": "PushBackendsToClusterLoadBalancers",
            "Effect": "Allow",
            "Action": "ssm:SendCommand",
            "Resource": f"{ec2}:instance/*",
            "Condition": {
                "StringEquals": {
                    "ssm:resourceTag/lbf:cluster": cluster,
                    "ssm:resourceTag/lbf:role": "lb",
                }
            },
        },
        {
            "Sid": "FollowCommands",
            "Effect": "Allow",
            "Action": ["ssm:ListCommands", "ssm:GetCommandInvocation"],
            "Resource": "*",
        },
        {
            "Sid": "ReadClusterParameters",
            "Effect": "Allow",
            "Action": ["ssm:GetParameter", "ssm:GetParameters"],
            "Resource": [
                f"{parameters}/{n}" for n in ("backends", "lbs", "notices", "paused", "held-drop")
            ],
        },
        {
            "Sid": "WriteClusterParameters",
            "Effect": "Allow",
            "Action": "ssm:PutParameter",
            # Never `paused`: the operator's switch. The history is only written here; it is read
            # (GetParameterHistory) by the operator's `status` and `history`, and by a run only
            # with LBF_DNS_FAILOVER=route53 (route53_option_statements).
            "Resource": [
                f"{parameters}/{n}" for n in ("backends", "lbs", "notices", "history", "held-drop")
            ],
        },
        *(
            [{"Sid": "Notify", "Effect": "Allow", "Action": "sns:Publish", "Resource": topic}]
            if (topic := topic_arn(inputs, account))
            else []
        ),
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": (
                f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/"
                f"{APP_NAME}-{inputs.stage}-*:*"
            ),
        },
    ]
    statements += route53_option_statements(environment or {}, parameters)
    if inputs.traced:
        statements.append(
            {
                "Sid": "SendTraces",
                "Effect": "Allow",
                "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                "Resource": "*",
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def route53_option_statements(
    environment: Mapping[str, str], parameters: str
) -> list[dict[str, Any]]:
    """LBF_ROUTE53_HEALTH_CHECKS=true or LBF_DNS_FAILOVER=route53: the health checks the
    controller keeps. Route 53 has no tag conditions for health checks, so these reach every
    check in the account: granted only while an option asks for them. The failover pair also
    reads `<prefix>/history` in a run (when it last swapped: one swap per check time)."""
    pair = environment.get("LBF_DNS_FAILOVER", "").lower() == "route53"
    checks = pair or environment.get("LBF_ROUTE53_HEALTH_CHECKS", "").lower() == "true"
    found: list[dict[str, Any]] = []
    if checks:
        found += [
            {
                "Sid": "CreateRoute53HealthChecks",
                "Effect": "Allow",
                "Action": ["route53:CreateHealthCheck", "route53:ListHealthChecks"],
                "Resource": "*",
            },
            {
                "Sid": "ManageRoute53HealthChecks",
                "Effect": "Allow",
                "Action": [
                    "route53:GetHealthCheckStatus",
                    "route53:UpdateHealthCheck",
                    "route53:DeleteHealthCheck",
                    "route53:ChangeTagsForResource",
                ],
                "Resource": "arn:aws:route53:::healthcheck/*",
            },
        ]
    if pair:
        found.append(
            {
                "Sid": "ReadFailoverHistory",
                "Effect": "Allow",
                "Action": "ssm:GetParameterHistory",
                "Resource": f"{parameters}/history",
            }
        )
    return found


def prober_policy(inputs: Inputs, looked: Looked) -> dict[str, Any]:
    """Its logs, and (in the VPC) the network interfaces Lambda makes with its role: nothing
    else, so a prober that is broken into reaches no AWS API."""
    region, account = inputs.region, looked.account
    group = f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{APP_NAME}-{inputs.stage}"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [f"{group}-{PROBER_LOGICAL_ID}-*:*", f"{group}-{PROBER}:*"],
        }
    ]
    if inputs.private_targets:
        ec2 = f"arn:aws:ec2:{region}:{account}"
        statements += [
            {
                "Sid": "FindVpcNetworkInterfaces",
                "Effect": "Allow",
                "Action": ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"],
                "Resource": "*",
            },
            {
                "Sid": "CreateVpcNetworkInterfaces",
                "Effect": "Allow",
                "Action": "ec2:CreateNetworkInterface",
                "Resource": [
                    f"{ec2}:network-interface/*",
                    *(f"{ec2}:subnet/{s}" for s in inputs.subnets),
                    f"{ec2}:security-group/{inputs.security_group}",
                ],
            },
            {
                "Sid": "ManageVpcNetworkInterfaces",
                "Effect": "Allow",
                "Action": list(LAMBDA_ONLY_ACTIONS),
                "Resource": f"{ec2}:network-interface/*",
            },
            {
                # Lambda makes and removes the interfaces with this role; the function's own code
                # would call with the same role, and its requests carry its ARN in
                # lambda:SourceFunctionArn: AWS's documented way to leave these to Lambda alone.
                "Sid": "InterfacesAreLambdasNotTheCodes",
                "Effect": "Deny",
                "Action": list(LAMBDA_ONLY_ACTIONS),
                "Resource": "*",
                "Condition": {
                    "ArnEquals": {"lambda:SourceFunctionArn": prober_arns(inputs, account)}
                },
            },
        ]
    return {"Version": "2012-10-17", "Statement": statements}


def prober_arns(inputs: Inputs, account: str) -> list[str]:
    """The prober's ARN as the stage stack names it (`<stack>-ProbePrivate-<random>`, unknown
    until it exists: hence the wildcard, which ArnEquals accepts) and as `chalice deploy` does."""
    function = f"arn:aws:lambda:{inputs.region}:{account}:function:{APP_NAME}-{inputs.stage}"
    return [f"{function}-{PROBER_LOGICAL_ID}-*", f"{function}-{PROBER}"]


def stage_config(inputs: Inputs, looked: Looked, previous: dict[str, Any]) -> dict[str, Any]:
    """The stage's entry in config.json; `previous` is what the stage held before, if anything."""
    kept = {
        k: v
        for k, v in previous.get("environment_variables", {}).items()
        if k not in _OWNED and k not in ("LBF_POOL_ADDRESS", "LBF_LB_ADDRESS")
    }
    kept |= inputs.variables
    service = kept.pop(
        "POWERTOOLS_SERVICE_NAME",
        APP_NAME if inputs.stage == "prod" else f"{APP_NAME}-{inputs.stage}",
    )
    kept.pop("POWERTOOLS_TRACE_DISABLED", None)
    environment: dict[str, str] = {
        "POWERTOOLS_SERVICE_NAME": service,
        "POWERTOOLS_TRACE_DISABLED": "false" if inputs.traced else "true",
        "LBF_CLUSTER": inputs.cluster,
        "LBF_DOMAIN": inputs.domain,
        "LBF_HOSTED_ZONE_ID": looked.zone_id,
    }
    topic = topic_arn(inputs, looked.account)
    if topic is not None:
        environment["LBF_SNS_TOPIC_ARN"] = topic
    if inputs.pool_address != "private":
        environment["LBF_POOL_ADDRESS"] = inputs.pool_address
    if inputs.lb_address != "public":
        environment["LBF_LB_ADDRESS"] = inputs.lb_address
    environment |= dict(sorted(kept.items()))
    checked = settings(inputs, environment)
    functions = previous.get("lambda_functions", {})
    controller_mb = DEFAULT_MEMORY_MB["traced" if inputs.traced else "untraced"]
    # A size is kept when the operator chose it; the default of the stage's previous tracing
    # follows the tracing asked for now (X-Ray on needs the larger size to start as fast).
    was_default = DEFAULT_MEMORY_MB["traced" if previous.get("xray") else "untraced"]
    lambda_functions: dict[str, Any] = {}
    for name in CONTROLLERS:
        memory = functions.get(name, {}).get("lambda_memory_size", controller_mb)
        lambda_functions[name] = {
            "lambda_memory_size": controller_mb if memory == was_default else memory
        }
    prober: dict[str, Any] = {
        "lambda_memory_size": functions.get(PROBER, {}).get(
            "lambda_memory_size", DEFAULT_MEMORY_MB[PROBER]
        ),
        "lambda_timeout": prober_timeout(checked),
        "iam_policy_file": f"policy-{inputs.stage}-prober.json",
        "xray": False,
        "environment_variables": {"POWERTOOLS_TRACE_DISABLED": "true"},
    }
    if inputs.private_targets:
        prober["subnet_ids"] = list(inputs.subnets)
        prober["security_group_ids"] = [inputs.security_group]
    prober = {
        k: prober[k]
        for k in (
            "lambda_memory_size",
            "lambda_timeout",
            "iam_policy_file",
            "xray",
            "subnet_ids",
            "security_group_ids",
            "environment_variables",
        )
        if k in prober
    }
    lambda_functions[PROBER] = prober
    return {
        "lambda_architecture": ARCHITECTURE,
        "iam_policy_file": f"policy-{inputs.stage}.json",
        "xray": inputs.traced,
        "layers": [looked.layer_arn],
        "environment_variables": environment,
        "lambda_functions": lambda_functions,
    }


def render(inputs: Inputs, looked: Looked, config: dict[str, Any]) -> dict[str, str]:
    """File name (under .chalice/) -> text, for the stage given the current config.json."""
    config = json.loads(json.dumps(config)) if config else {}
    config.setdefault("version", "2.0")
    config.setdefault("app_name", APP_NAME)
    config.setdefault("autogen_policy", False)
    config.setdefault("lambda_timeout", CONTROLLER_TIMEOUT_S)
    config.setdefault("log_retention_in_days", 30)
    config.setdefault("environment_variables", {"POWERTOOLS_METRICS_NAMESPACE": "LbFailover"})
    stages = config.setdefault("stages", {})
    previous = stages.get(inputs.stage, {})
    stages[inputs.stage] = stage_config(inputs, looked, previous)
    prefix = parameter_prefix(inputs, stages[inputs.stage]["environment_variables"])
    environment = stages[inputs.stage]["environment_variables"]
    document = environment.get("LBF_SSM_DOCUMENT", DOCUMENT)

    def text(value: dict[str, Any]) -> str:
        return json.dumps(value, indent=2) + "\n"

    return {
        "config.json": text(config),
        f"policy-{inputs.stage}.json": text(
            controller_policy(inputs, looked, prefix, document, environment)
        ),
        f"policy-{inputs.stage}-prober.json": text(prober_policy(inputs, looked)),
    }


# --- the stage files ------------------------------------------------------------------------
# .chalice/config.json and the policies are this checkout's, never tracked (.gitignore): a pull
# or a checkout of another release leaves them alone. The files each run replaces go to
# .chalice/previous/, which `--rollback` puts back.

PREVIOUS = "previous"


def read_config(path: Path) -> dict[str, Any]:
    """The checkout's config.json; {} before the first stage is written."""
    if not path.exists():
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigureError(f"{path} is not JSON ({exc}): fix it or --rollback") from exc
    if not isinstance(config, dict):
        raise ConfigureError(f"{path} is not a chalice config (a JSON object)")
    return config


def stage_files(chalice: Path) -> dict[str, str]:
    """The generated files in `chalice`: config.json and the policies, by name."""
    found = [chalice / "config.json", *sorted(chalice.glob("policy-*.json"))]
    return {path.name: path.read_text(encoding="utf-8") for path in found if path.is_file()}


def replace_files(chalice: Path, files: dict[str, str], *, remove_others: bool) -> None:
    """Write `files` into `chalice`, keeping what they replace in .chalice/previous/."""
    current = stage_files(chalice)
    kept = chalice / PREVIOUS
    if current:
        kept.mkdir(parents=True, exist_ok=True)
        for old in kept.glob("*.json"):
            old.unlink()
        for name, text in current.items():
            (kept / name).write_text(text, encoding="utf-8")
    chalice.mkdir(parents=True, exist_ok=True)
    if remove_others:
        for name in set(current) - set(files):
            (chalice / name).unlink()
    for name, text in files.items():
        (chalice / name).write_text(text, encoding="utf-8")


def stage_environments(config: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Each stage's environment as chalice hands it to the functions: top level, then stage."""
    return {
        name: {**config.get("environment_variables", {}), **stage.get("environment_variables", {})}
        for name, stage in config.get("stages", {}).items()
    }


def rollback(chalice: Path) -> list[str]:
    """Put back the files the last run replaced (a second rollback undoes the first). Refused,
    with nothing changed, when there are none or a stage in them would not start."""
    kept = chalice / PREVIOUS
    files = stage_files(kept) if kept.is_dir() else {}
    if "config.json" not in files:
        raise ConfigureError(f"--rollback: {kept} holds no earlier config.json: nothing to restore")
    try:
        config = json.loads(files["config.json"])
    except ValueError as exc:
        raise ConfigureError(f"--rollback: {kept / 'config.json'} is not JSON: {exc}") from exc
    for name, environment in stage_environments(config).items():
        try:
            Settings.from_env(environment)
        except ConfigError as exc:
            raise ConfigureError(
                f"--rollback: stage {name} of {kept / 'config.json'} would not start: {exc}"
            ) from exc
    replace_files(chalice, files, remove_others=True)
    return sorted(files)


# --- command line ---------------------------------------------------------------------------


def parse(argv: Sequence[str] | None) -> tuple[Inputs, Path]:
    parser = argparse.ArgumentParser(
        prog="python infra/configure.py", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--stage", default="prod")
    parser.add_argument("--cluster", required=True, help="LBF_CLUSTER (the lbf:cluster tag)")
    parser.add_argument("--domain", required=True, help="LBF_DOMAIN: only this cluster's names")
    parser.add_argument("--region", required=True)
    parser.add_argument("--zone-id", default="", help="default: the public zone holding --domain")
    parser.add_argument("--subnets", default="", help="the prober's two subnets, comma-separated")
    parser.add_argument("--security-group", default="", help="the prober's security group")
    parser.add_argument("--pool-address", default="", help="LBF_POOL_ADDRESS (private)")
    parser.add_argument("--lb-address", default="", help="LBF_LB_ADDRESS (public)")
    tracing = parser.add_mutually_exclusive_group()
    tracing.add_argument("--xray", dest="xray", action="store_true", default=False)
    # Off is the default; kept so that scripts written when prod was traced by default still run.
    tracing.add_argument("--no-xray", dest="xray", action="store_false")
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="any other LBF_* variable"
    )
    parser.add_argument("--layer-arn", default="", help="default: looked up for the pinned version")
    parser.add_argument("--project", default=str(ROOT), help="the checkout to write into")
    parser.add_argument(
        "--rollback", action="store_true", help="put back the files the last run replaced"
    )
    args = parser.parse_args(argv)
    variables = {}
    for item in args.set:
        match = _VARIABLE.fullmatch(item)
        if not match:
            raise ConfigureError(f"--set: {item!r} is not NAME=VALUE with an LBF_ name")
        variables[match.group(1)] = match.group(2)
    inputs = Inputs(
        stage=args.stage,
        cluster=args.cluster,
        domain=args.domain,
        region=args.region,
        zone_id=args.zone_id,
        subnets=tuple(args.subnets.split(",")) if args.subnets else (),
        security_group=args.security_group,
        pool_address=args.pool_address,
        lb_address=args.lb_address,
        xray=args.xray,
        variables=variables,
        layer_arn=args.layer_arn,
    )
    return check(inputs), Path(args.project)


def main_rollback(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python infra/configure.py --rollback")
    parser.add_argument("--rollback", action="store_true", required=True)
    parser.add_argument("--project", default=str(ROOT), help="the checkout to write into")
    args = parser.parse_args(argv)
    chalice = Path(args.project) / ".chalice"
    try:
        restored = rollback(chalice)
    except ConfigureError as exc:
        print(f"configure: {exc}", file=sys.stderr)
        return 2
    print(
        f"restored {', '.join(restored)} from .chalice/{PREVIOUS}/; the files they replaced are "
        f"there now (--rollback again undoes this). Deploy the stage to apply it."
    )
    return 0


def main(argv: Sequence[str] | None = None, session: Any = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if "--rollback" in arguments:
        return main_rollback(arguments)
    try:
        inputs, project = parse(arguments)
        check_interpreter(project)
        chalice = project / ".chalice"
        config_path = chalice / "config.json"
        config = read_config(config_path)
        # Every check on what would be written, before the first AWS call.
        existing_cluster(inputs, config, None)
        render(inputs, Looked(_UNLOOKED_ACCOUNT, inputs.zone_id or _UNLOOKED_ZONE, ""), config)
        if session is None:
            import boto3

            session = boto3.Session(region_name=inputs.region)
        looked = look_up(inputs, session, project, config)
        files = render(inputs, looked, config)
    except ConfigureError as exc:
        print(f"configure: {exc}", file=sys.stderr)
        return 2
    except AWS_FAILURES as exc:
        print(f"configure: {aws_problem(exc)}", file=sys.stderr)
        return exit_status(exc)
    for warning in looked.warnings:
        print(f"configure: warning: {warning}", file=sys.stderr)
    replace_files(chalice, files, remove_others=False)
    for name in files:
        print(f"wrote .chalice/{name}")
    print(
        f"stage {inputs.stage}: cluster {inputs.cluster}, {inputs.domain} in zone "
        f"{looked.zone_id}, account {looked.account}, layer {looked.layer_arn}, prober "
        + ("in the VPC" if inputs.private_targets else "idle (no private target)")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
