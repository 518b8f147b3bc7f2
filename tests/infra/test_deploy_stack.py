"""The deployable stack: templates lint clean, the functions' policies are least privilege and
agree with the stage settings, the package stays small, and the alarms watch what matters.

Nothing here calls AWS: cfn-lint and parliament run locally, `chalice package` builds offline
(requirements.txt holds nothing to download), and the optional stack test runs in moto.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import pytest

from tests.kit.aws_env import use_fake_credentials
from tests.kit.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_DIR = ROOT / "infra" / "stages" / ".chalice"
# An operator's checkout holds the stages that infra/configure.py wrote (one per cluster, never
# tracked), and these tests check each of them; a fresh clone has the committed examples, dev and
# prod.
CHALICE_DIR = ROOT / ".chalice" if (ROOT / ".chalice" / "config.json").is_file() else EXAMPLE_DIR
CFN_DIR = ROOT / "infra" / "cloudformation"
MERGE_TEMPLATE = CFN_DIR / "merge" / "monitoring.yaml"
DOCUMENT_SOURCE = ROOT / "infra" / "render_document.py"
DEPLOY_DOC = ROOT / "infra" / "DEPLOY.md"
CONFIG: dict[str, Any] = json.loads((CHALICE_DIR / "config.json").read_text(encoding="utf-8"))
STAGES = tuple(sorted(CONFIG["stages"]))
EXAMPLE_ACCOUNT = "111122223333"  # the committed examples' account
STANDALONE_TEMPLATES = sorted([*CFN_DIR.glob("*.yaml"), *CFN_DIR.glob("*.json")])

# What the controller writes on instances (SPEC, "Written by the controller"). Never lbf:role or
# lbf:cluster: with those it could make any instance a target of its own SendCommand.
CONTROLLER_TAG_KEYS = {"lbf:name", "lbf:health", "lbf:probe", "lbf:state", "lbf:backends"}
OPERATOR_TAG_KEYS = {"lbf:cluster", "lbf:role", "lbf:port", "lbf:maintenance"}

# Every API call the functions make (chalicelib/adapters), and nothing else. Adding a call means
# adding it here, in the policies, and saying why in the commit.
CONTROLLER_ACTIONS = {
    "ec2:DescribeInstances",
    "ec2:DescribeAddresses",
    "ec2:CreateTags",
    "ec2:AssociateAddress",
    "route53:ListResourceRecordSets",
    "route53:ChangeResourceRecordSets",
    "route53:GetChange",
    "ssm:SendCommand",
    "ssm:ListCommands",
    "ssm:GetCommandInvocation",
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:PutParameter",
    "sns:Publish",
    # Writing the function's own logs (the log groups are made by the stack, with retention).
    "logs:CreateLogStream",
    "logs:PutLogEvents",
}
# The prober calls no AWS API: it writes its logs, and Lambda attaches it to the VPC with its
# execution role (subnet_ids). Nothing else, and no X-Ray even on a traced stage.
PROBER_ACTIONS = {
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}
# chalice's lambda_functions keys are the function names in app.py.
CONTROLLERS = ("reconcile", "on_instance_change")
PROBER = "probe_private"
XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}

# Actions that IAM cannot scope to a resource: `"Resource": "*"` is the only form that works.
UNSCOPABLE_ACTIONS = {
    "ec2:DescribeInstances",
    "ec2:DescribeAddresses",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ssm:ListCommands",
    "ssm:GetCommandInvocation",
    "route53:CreateHealthCheck",
    "route53:ListHealthChecks",
    *XRAY_ACTIONS,
}

# parliament findings accepted on purpose, keyed by (issue, actions named in the finding).
# Every entry must still be produced by some policy, so a fixed database retires its entry.
PARLIAMENT_ALLOWED: dict[tuple[str, frozenset[str]], str] = {
    ("RESOURCE_MISMATCH", frozenset({"ssm:SendCommand"})): (
        "parliament's action database knows only the document resource of SendCommand. IAM "
        "authorises SendCommand on the document AND on every target instance; the instance "
        "statement, with its ssm:resourceTag/lbf:role and lbf:cluster conditions, is exactly "
        "what keeps the controller's commands on its own load balancers."
    ),
    ("RESOURCE_MISMATCH", frozenset({"route53:ChangeTagsForResource"})): (
        "parliament's action database predates health-check resources for "
        "ChangeTagsForResource; IAM accepts arn:aws:route53:::healthcheck/* for it (only in "
        "the optional LBF_ROUTE53_HEALTH_CHECKS statement that infra/DEPLOY.md shows)."
    ),
    **{
        (
            "UNKNOWN_CONDITION_FOR_ACTION",
            frozenset({f"Unknown condition lambda:SourceFunctionArn for action {action}"}),
        ): (
            "lambda:SourceFunctionArn is set by Lambda on every request made with a function's "
            "role from inside the function, whatever the service; AWS documents exactly this "
            "Deny (the prober's InterfacesAreLambdasNotTheCodes) for the network-interface "
            "actions of a VPC function's execution role. parliament lists only each service's "
            "own condition keys."
        )
        for action in (
            "ec2:DeleteNetworkInterface",
            "ec2:AssignPrivateIpAddresses",
            "ec2:UnassignPrivateIpAddresses",
        )
    },
}
# The network-interface actions that Lambda takes with the prober's role and that its code may not.
LAMBDA_ONLY_ACTIONS = {
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}

HEALTH_CHECK_ACTIONS = {
    "route53:CreateHealthCheck",
    "route53:ListHealthChecks",
    "route53:GetHealthCheckStatus",
    "route53:UpdateHealthCheck",
    "route53:DeleteHealthCheck",
    "route53:ChangeTagsForResource",
}


# --- reading the configuration --------------------------------------------------------------


def stage_setting(stage: str, key: str, default: Any = None) -> Any:
    """A chalice setting as the stage sees it: the stage's value, else the top-level one."""
    return CONFIG["stages"][stage].get(key, CONFIG.get(key, default))


def function_setting(stage: str, function: str, key: str, default: Any = None) -> Any:
    """A setting as one function of the stage gets it, in chalice's order of lookup."""
    from chalice.config import Config

    config = Config(chalice_stage=stage, function_name=function, config_from_disk=CONFIG)
    attribute = {
        "iam_policy_file": "iam_policy_file",
        "xray": "xray_enabled",
        "subnet_ids": "subnet_ids",
        "security_group_ids": "security_group_ids",
        "lambda_memory_size": "lambda_memory_size",
        "lambda_timeout": "lambda_timeout",
        "layers": "layers",
        "lambda_architecture": "lambda_architecture",
        "environment_variables": "environment_variables",
    }[key]
    value = getattr(config, attribute)
    return default if value is None else value


def stage_env(stage: str) -> dict[str, str]:
    return {
        **CONFIG.get("environment_variables", {}),
        **CONFIG["stages"][stage].get("environment_variables", {}),
    }


def region_and_account(stage: str) -> tuple[str, str]:
    """Read from the topic ARN: the stack's predictable output that the operator pastes."""
    topic = stage_env(stage)["LBF_SNS_TOPIC_ARN"]
    _arn, _partition, _service, region, account, _name = topic.split(":")
    return region, account


def document_name(stage: str) -> str:
    return stage_env(stage).get("LBF_SSM_DOCUMENT", "LbFailover-UpdateBackends")


def parameter_prefix(stage: str) -> str:
    env = stage_env(stage)
    return env.get("LBF_PARAMETER_PREFIX", f"/lbf/{env['LBF_CLUSTER']}")


def load_policy(stage: str, function: str = "reconcile") -> dict[str, Any]:
    path = CHALICE_DIR / function_setting(stage, function, "iam_policy_file")
    policy: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return policy


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return as_list(policy["Statement"])


def granting(policy: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in statements(policy) if action in as_list(s["Action"])]


def policy_actions(policy: dict[str, Any]) -> set[str]:
    return {a for s in statements(policy) for a in as_list(s["Action"])}


def deploy_doc_health_check_statements() -> list[dict[str, Any]]:
    """The statements infra/DEPLOY.md tells operators to add for LBF_ROUTE53_HEALTH_CHECKS."""
    text = DEPLOY_DOC.read_text(encoding="utf-8")
    match = re.search(r"<!-- health-check-statements -->\s*```json\n(.*?)```", text, re.S)
    assert match, "infra/DEPLOY.md lost its marked health-check statements"
    found: list[dict[str, Any]] = json.loads(match.group(1))
    return found


# --- CloudFormation templates ------------------------------------------------------------------


def cfn_lint(path: Path) -> list[str]:
    from cfnlint.api import lint_file

    return [
        f"{m.rule.id} {m.message} ({Path(m.filename).name}:{m.linenumber})" for m in lint_file(path)
    ]


def test_infra_has_the_templates() -> None:
    names = {p.name for p in STANDALONE_TEMPLATES}
    assert {"cluster.yaml", "network.yaml"} <= names
    if DOCUMENT_SOURCE.exists():
        assert "ssm-document.json" in names


@pytest.mark.parametrize("template", STANDALONE_TEMPLATES, ids=lambda p: p.name)
def test_template_passes_cfn_lint(template: Path) -> None:
    # No finding is waived: a template that needs one gets a justified Metadata exception.
    assert cfn_lint(template) == []


def test_network_has_no_way_out_of_the_vpc() -> None:
    """No NAT gateway (a single zone's point of failure, and 77% of the old bill), no internet
    route, no endpoints: the prober only reaches addresses inside the VPC."""
    template = load_yaml_template(CFN_DIR / "network.yaml")
    resources = template["Resources"]
    kinds = {r["Type"] for r in resources.values()}
    for kind in (
        "AWS::EC2::NatGateway",
        "AWS::EC2::EIP",
        "AWS::EC2::Route",
        "AWS::EC2::InternetGateway",
        "AWS::EC2::VPCEndpoint",
    ):
        assert kind not in kinds
    assert "NatPublicIp" not in template["Outputs"]
    zones = {
        json.dumps(r["Properties"]["AvailabilityZone"])
        for r in resources.values()
        if r["Type"] == "AWS::EC2::Subnet"
    }
    assert len(zones) == 2
    prober = resources["ProberSecurityGroup"]["Properties"]
    assert "SecurityGroupIngress" not in prober
    assert prober["SecurityGroupEgress"] == [
        {
            "Description": "probes of private addresses",
            "IpProtocol": "tcp",
            "FromPort": {"Ref": "ProbeFromPort"},
            "ToPort": {"Ref": "ProbeToPort"},
            "CidrIp": {"Ref": "VpcCidr"},
        }
    ]
    assert set(template["Outputs"]) >= {"ProberSubnetIds", "ProberSecurityGroupId"}


def load_infra_module(name: str) -> ModuleType:
    """An operator tool of infra/, loaded by path: infra/ is no package."""
    return load_script(ROOT / "infra" / f"{name}.py", f"lbf_infra_{name}")


def load_render() -> ModuleType:
    return load_script(CFN_DIR / "render.py", "lbf_cfn_render")


needs_document = pytest.mark.skipif(
    not DOCUMENT_SOURCE.exists(), reason="infra/render_document.py is not written yet"
)


@needs_document
def test_ssm_document_template_is_the_rendering_of_render_document() -> None:
    render = load_render()
    committed = (CFN_DIR / "ssm-document.json").read_text(encoding="utf-8")
    assert committed == render.render(), "run: python infra/cloudformation/render.py"
    resource = json.loads(committed)["Resources"]["UpdateBackendsDocument"]
    assert resource["Properties"]["Content"] == render.load_document()


@needs_document
def test_ssm_document_resource_is_the_one_the_policies_allow() -> None:
    template = json.loads((CFN_DIR / "ssm-document.json").read_text(encoding="utf-8"))
    properties = template["Resources"]["UpdateBackendsDocument"]["Properties"]
    assert properties["DocumentType"] == "Command"
    assert properties["DocumentFormat"] == "JSON"
    assert properties["Content"]["schemaVersion"] == "2.2"
    assert {"Backends", "Checksum"} <= set(properties["Content"]["parameters"])
    for stage in STAGES:
        assert properties["Name"] == document_name(stage)


# --- the functions' IAM policies ----------------------------------------------------------------


def parliament_findings(policy_text: str) -> list[tuple[str, frozenset[str]]]:
    import parliament

    found = []
    for finding in parliament.analyze_policy_string(
        policy_text, include_community_auditors=True
    ).findings:
        details = finding.detail if isinstance(finding.detail, list) else [finding.detail]
        actions = frozenset(
            d["action"] for d in details if isinstance(d, dict) and "action" in d
        ) or frozenset(str(d) for d in details)
        found.append((finding.issue, actions))
    return found


def merge_template_invoke_policy() -> dict[str, Any]:
    """The controllers' grant to invoke the prober, with a concrete ARN for parliament."""
    resource = load_yaml_template(MERGE_TEMPLATE)["Resources"]["ControllerInvokesProber"]
    document = json.loads(json.dumps(resource["Properties"]["PolicyDocument"]))
    for statement in document["Statement"]:
        assert statement["Resource"] == {"Fn::GetAtt": ["ProbePrivate", "Arn"]}
        statement["Resource"] = (
            "arn:aws:lambda:eu-west-1:111122223333:function:lb-failover-prod-ProbePrivate-AbC"
        )
    return dict(document)


POLICY_NAMES = [*STAGES, *(f"{s} prober" for s in STAGES), "merge template invoke"]


def all_policy_texts() -> dict[str, str]:
    texts = {
        stage: (CHALICE_DIR / stage_setting(stage, "iam_policy_file")).read_text(encoding="utf-8")
        for stage in STAGES
    }
    for stage in STAGES:
        path = CHALICE_DIR / function_setting(stage, PROBER, "iam_policy_file")
        texts[f"{stage} prober"] = path.read_text(encoding="utf-8")
    texts["merge template invoke"] = json.dumps(merge_template_invoke_policy())
    texts["DEPLOY.md health checks"] = json.dumps(
        {"Version": "2012-10-17", "Statement": deploy_doc_health_check_statements()}
    )
    for name, env in ROUTE53_OPTIONS.items():
        texts[name] = json.dumps(generated_policy(env))
    return texts


# The Route 53 options that change the controller's generated policy.
ROUTE53_OPTIONS = {
    "generated with health checks": {"LBF_ROUTE53_HEALTH_CHECKS": "true"},
    "generated with the failover pair": {"LBF_DNS_FAILOVER": "route53"},
    "generated with both": {"LBF_DNS_FAILOVER": "route53", "LBF_ROUTE53_HEALTH_CHECKS": "true"},
}


def generated_policy(env: dict[str, str]) -> dict[str, Any]:
    """infra/configure.py's controller policy for a stage with these variables."""
    configure = load_infra_module("configure")
    inputs = configure.Inputs(
        stage="prod", cluster="web", domain="edge.example.com", region="eu-west-1", xray=False
    )
    looked = configure.Looked(EXAMPLE_ACCOUNT, "Z0000000000EXAMPLE", "")
    policy: dict[str, Any] = configure.controller_policy(
        inputs, looked, "/lbf/web", environment=env
    )
    return policy


@pytest.mark.parametrize(
    ("env", "added"),
    [
        ({}, set()),
        ({"LBF_ROUTE53_HEALTH_CHECKS": "false", "LBF_DNS_FAILOVER": "controller"}, set()),
        ({"LBF_ROUTE53_HEALTH_CHECKS": "true"}, HEALTH_CHECK_ACTIONS),
        ({"LBF_DNS_FAILOVER": "route53"}, HEALTH_CHECK_ACTIONS | {"ssm:GetParameterHistory"}),
    ],
)
def test_the_generated_policy_grants_what_the_route53_options_call(
    env: dict[str, str], added: set[str]
) -> None:
    """The health checks reach every check in the account (no tag conditions for them): granted
    only while an option keeps checks. The pair reads only its history, nothing else of SSM's."""
    policy = generated_policy(env)
    assert policy_actions(policy) == CONTROLLER_ACTIONS | added
    for statement in granting(policy, "ssm:GetParameterHistory"):
        assert as_list(statement["Resource"]) == [
            f"arn:aws:ssm:eu-west-1:{EXAMPLE_ACCOUNT}:parameter/lbf/web/history"
        ]
    for action in HEALTH_CHECK_ACTIONS & added:
        for statement in granting(policy, action):
            for resource in as_list(statement["Resource"]):
                assert resource == "arn:aws:route53:::healthcheck/*" or (
                    resource == "*" and action in UNSCOPABLE_ACTIONS
                )


@pytest.mark.parametrize("name", [*POLICY_NAMES, "DEPLOY.md health checks", *ROUTE53_OPTIONS])
def test_policy_passes_parliament_but_for_justified_findings(name: str) -> None:
    unexpected = [
        f for f in parliament_findings(all_policy_texts()[name]) if f not in PARLIAMENT_ALLOWED
    ]
    assert unexpected == []


def test_every_parliament_exception_is_still_needed() -> None:
    seen = {f for text in all_policy_texts().values() for f in parliament_findings(text)}
    assert set(PARLIAMENT_ALLOWED) <= seen


def test_each_stage_has_its_own_hand_written_policies() -> None:
    """One for the controllers, one for the prober, per stage."""
    assert STAGES
    assert CONFIG["autogen_policy"] is False
    files = set()
    for stage in STAGES:
        assert stage_setting(stage, "autogen_policy") is False
        controllers = {function_setting(stage, f, "iam_policy_file") for f in CONTROLLERS}
        prober = function_setting(stage, PROBER, "iam_policy_file")
        assert len(controllers) == 1
        assert prober not in controllers
        for name in (*controllers, prober):
            assert (CHALICE_DIR / name).is_file()
            files.add(name)
    assert len(files) == 2 * len(STAGES)


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("function", [*CONTROLLERS, PROBER])
def test_policy_is_allow_only_without_wildcard_actions(stage: str, function: str) -> None:
    for statement in statements(load_policy(stage, function)):
        # The one Deny: test_the_probers_code_cannot_use_lambdas_interface_actions.
        assert statement["Effect"] == "Allow" or (
            function == PROBER and statement["Sid"] == "InterfacesAreLambdasNotTheCodes"
        )
        assert not {"NotAction", "NotResource", "Principal"} & set(statement)
        for action in as_list(statement["Action"]):
            assert "*" not in action, (statement["Sid"], action)
            assert "?" not in action, (statement["Sid"], action)


def option_actions(env: dict[str, str]) -> set[str]:
    """What the stage's Route 53 options add: the health checks, and for the failover pair the
    history a run reads (when the pair last swapped)."""
    pair = env.get("LBF_DNS_FAILOVER", "").lower() == "route53"
    checks = pair or env.get("LBF_ROUTE53_HEALTH_CHECKS", "").lower() == "true"
    return (HEALTH_CHECK_ACTIONS if checks else set()) | (
        {"ssm:GetParameterHistory"} if pair else set()
    )


@pytest.mark.parametrize("stage", STAGES)
def test_policy_grants_exactly_the_controllers_calls(stage: str) -> None:
    expected = CONTROLLER_ACTIONS | (XRAY_ACTIONS if stage_setting(stage, "xray") else set())
    expected |= option_actions(stage_env(stage))
    assert policy_actions(load_policy(stage)) == expected


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("function", [*CONTROLLERS, PROBER])
def test_star_resource_only_where_iam_has_no_resource_level_permission(
    stage: str, function: str
) -> None:
    for statement in statements(load_policy(stage, function)):
        if "*" in as_list(statement["Resource"]) and statement["Effect"] == "Allow":
            assert set(as_list(statement["Action"])) <= UNSCOPABLE_ACTIONS, statement["Sid"]


@pytest.mark.parametrize("stage", STAGES)
def test_route53_changes_only_the_clusters_records_in_its_zone(stage: str) -> None:
    env = stage_env(stage)
    domain = env["LBF_DOMAIN"].lower().rstrip(".")
    zone = f"arn:aws:route53:::hostedzone/{env['LBF_HOSTED_ZONE_ID'].removeprefix('/hostedzone/')}"
    policy = load_policy(stage)
    for action in ("route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets"):
        for statement in granting(policy, action):
            assert as_list(statement["Resource"]) == [zone]
    (change,) = granting(policy, "route53:ChangeResourceRecordSets")
    condition = change["Condition"]
    patterns = as_list(
        condition["ForAllValues:StringLike"][
            "route53:ChangeResourceRecordSetsNormalizedRecordNames"
        ]
    )
    assert as_list(
        condition["ForAllValues:StringEquals"]["route53:ChangeResourceRecordSetsRecordTypes"]
    ) == ["A", "TXT"]

    def allowed(name: str) -> bool:  # StringLike: `*` and `?` as in fnmatch, case-sensitive
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)

    # Route 53 compares normalized names: lower case, no trailing dot.
    active = env.get("LBF_ACTIVE_NAME", "lb")
    for name in (f"{active}.{domain}", f"lb1.{domain}", f"edge-a.{domain}", f"_lbf.{domain}"):
        assert allowed(name), name
    for name in (domain, "www.example.com", f"lb1.other-{domain}", f"{domain}.evil.example"):
        assert not allowed(name), name


@pytest.mark.parametrize("stage", STAGES)
def test_send_command_only_the_document_on_the_clusters_lbs(stage: str) -> None:
    region, account = region_and_account(stage)
    cluster = stage_env(stage)["LBF_CLUSTER"]
    document_arn = f"arn:aws:ssm:{region}:{account}:document/{document_name(stage)}"
    grants = granting(load_policy(stage), "ssm:SendCommand")
    resources = {r for s in grants for r in as_list(s["Resource"])}
    assert resources == {document_arn, f"arn:aws:ec2:{region}:{account}:instance/*"}
    for statement in grants:
        assert as_list(statement["Action"]) == ["ssm:SendCommand"]
        if as_list(statement["Resource"]) != [document_arn]:
            assert statement["Condition"] == {
                "StringEquals": {
                    "ssm:resourceTag/lbf:role": "lb",
                    "ssm:resourceTag/lbf:cluster": cluster,
                }
            }


@pytest.mark.parametrize("stage", STAGES)
def test_create_tags_only_the_controllers_keys_on_the_clusters_instances(stage: str) -> None:
    region, account = region_and_account(stage)
    cluster = stage_env(stage)["LBF_CLUSTER"]
    grants = granting(load_policy(stage), "ec2:CreateTags")
    assert grants
    for statement in grants:
        assert as_list(statement["Action"]) == ["ec2:CreateTags"]
        assert as_list(statement["Resource"]) == [f"arn:aws:ec2:{region}:{account}:instance/*"]
        condition = statement["Condition"]
        assert condition["StringEquals"]["ec2:ResourceTag/lbf:cluster"] == cluster
        keys = set(as_list(condition["ForAllValues:StringEquals"]["aws:TagKeys"]))
        assert keys <= CONTROLLER_TAG_KEYS
        assert not keys & OPERATOR_TAG_KEYS
        # ForAllValues is true for a request without tags; Null keeps the statement honest.
        assert condition["Null"] == {"aws:TagKeys": "false"}
        if keys & {"lbf:name", "lbf:state", "lbf:backends"}:  # LB-only tags
            assert condition["StringEquals"]["ec2:ResourceTag/lbf:role"] == "lb"


@pytest.mark.parametrize("stage", STAGES)
def test_elastic_ip_moves_only_between_the_clusters_lbs(stage: str) -> None:
    region, account = region_and_account(stage)
    cluster = stage_env(stage)["LBF_CLUSTER"]
    for statement in granting(load_policy(stage), "ec2:AssociateAddress"):
        (resource,) = as_list(statement["Resource"])
        tags = statement["Condition"]["StringEquals"]
        assert tags["ec2:ResourceTag/lbf:cluster"] == cluster
        if resource == f"arn:aws:ec2:{region}:{account}:instance/*":
            assert tags["ec2:ResourceTag/lbf:role"] == "lb"
        else:
            assert resource == f"arn:aws:ec2:{region}:{account}:elastic-ip/*"


@pytest.mark.parametrize("stage", STAGES)
def test_parameters_only_under_the_prefix_and_never_writes_paused(stage: str) -> None:
    region, account = region_and_account(stage)
    base = f"arn:aws:ssm:{region}:{account}:parameter{parameter_prefix(stage)}/"
    policy = load_policy(stage)
    for action in ("ssm:GetParameter", "ssm:GetParameters"):
        (statement,) = granting(policy, action)
        assert set(as_list(statement["Resource"])) == {
            base + name for name in ("backends", "lbs", "notices", "paused", "held-drop")
        }
    (put,) = granting(policy, "ssm:PutParameter")
    # `paused` is the operator's switch: the controller reads it and never writes it. It writes
    # the history, which only the operator's `status` and `history` read.
    assert set(as_list(put["Resource"])) == {
        base + n for n in ("backends", "lbs", "notices", "history", "held-drop")
    }


@pytest.mark.parametrize("stage", STAGES)
def test_the_rest_of_the_policy_matches_the_stage(stage: str) -> None:
    region, account = region_and_account(stage)
    env = stage_env(stage)
    policy = load_policy(stage)
    (publish,) = granting(policy, "sns:Publish")
    assert as_list(publish["Resource"]) == [env["LBF_SNS_TOPIC_ARN"]]
    (logs,) = granting(policy, "logs:PutLogEvents")
    # Function names are "lb-failover-<stage>-..." from both `chalice deploy` and the
    # CloudFormation stack named lb-failover-<stage> (infra/DEPLOY.md).
    assert as_list(logs["Resource"]) == [
        f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{CONFIG['app_name']}-{stage}-*:*"
    ]
    # Every ARN names the stage's own account and region.
    for statement in [*statements(policy), *statements(load_policy(stage, PROBER))]:
        for resource in as_list(statement["Resource"]):
            parts = resource.split(":")
            if resource != "*" and parts[2] not in ("route53",):
                assert parts[3:5] == [region, account], resource


@pytest.mark.parametrize("stage", STAGES)
def test_the_prober_may_only_write_its_logs_and_attach_to_its_subnets(stage: str) -> None:
    region, account = region_and_account(stage)
    policy = load_policy(stage, PROBER)
    assert policy_actions(policy) == PROBER_ACTIONS
    assert function_setting(stage, PROBER, "xray") is False
    assert (
        function_setting(stage, PROBER, "environment_variables")["POWERTOOLS_TRACE_DISABLED"]
        == "true"
    )
    (logs,) = granting(policy, "logs:PutLogEvents")
    # Its own log group only, named by CloudFormation (<stack>-ProbePrivate-<random>) or by
    # `chalice deploy` (<app>-<stage>-probe_private).
    group = f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{CONFIG['app_name']}-{stage}"
    assert set(as_list(logs["Resource"])) == {
        f"{group}-ProbePrivate-*:*",
        f"{group}-{PROBER}:*",
    }
    (create_eni,) = granting(policy, "ec2:CreateNetworkInterface")
    ec2 = f"arn:aws:ec2:{region}:{account}"
    subnets = function_setting(stage, PROBER, "subnet_ids", [])
    groups = function_setting(stage, PROBER, "security_group_ids", [])
    assert len(subnets) == 2
    assert len(groups) == 1
    assert set(as_list(create_eni["Resource"])) == {
        f"{ec2}:network-interface/*",
        *(f"{ec2}:subnet/{s}" for s in subnets),
        *(f"{ec2}:security-group/{g}" for g in groups),
    }


@pytest.mark.parametrize("stage", STAGES)
def test_the_probers_code_cannot_use_lambdas_interface_actions(stage: str) -> None:
    """Lambda deletes the prober's interfaces and moves their addresses with the prober's role,
    on any interface of the region; the same calls from the prober's code carry its ARN in
    lambda:SourceFunctionArn, and AWS documents a Deny on that key as the way to keep them
    Lambda's. The ARN patterns are the stack's name for the prober and chalice deploy's."""
    region, account = region_and_account(stage)
    policy = load_policy(stage, PROBER)
    if function_setting(stage, PROBER, "subnet_ids") is None:
        assert not policy_actions(policy) & LAMBDA_ONLY_ACTIONS
        return
    (deny,) = [s for s in statements(policy) if s["Effect"] == "Deny"]
    assert set(as_list(deny["Action"])) == LAMBDA_ONLY_ACTIONS
    assert as_list(deny["Resource"]) == ["*"]
    function = f"arn:aws:lambda:{region}:{account}:function:{CONFIG['app_name']}-{stage}"
    assert deny["Condition"] == {
        "ArnEquals": {
            "lambda:SourceFunctionArn": [f"{function}-ProbePrivate-*", f"{function}-{PROBER}"]
        }
    }
    allowed = {
        a for s in statements(policy) if s["Effect"] == "Allow" for a in as_list(s["Action"])
    }
    assert allowed >= LAMBDA_ONLY_ACTIONS  # Lambda itself still may


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("function", CONTROLLERS)
def test_the_controllers_run_outside_any_vpc(stage: str, function: str) -> None:
    assert function_setting(stage, function, "subnet_ids") is None
    assert function_setting(stage, function, "security_group_ids") is None
    assert not {"ec2:CreateNetworkInterface"} & policy_actions(load_policy(stage, function))


def test_the_controllers_may_invoke_the_prober_and_nothing_else() -> None:
    resources = load_yaml_template(MERGE_TEMPLATE)["Resources"]
    grant = resources["ControllerInvokesProber"]
    assert grant["Type"] == "AWS::IAM::Policy"
    assert grant["Properties"]["Roles"] == [
        {"Ref": "ReconcileRole"},
        {"Ref": "OnInstanceChangeRole"},
    ]
    (statement,) = grant["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert as_list(statement["Action"]) == ["lambda:InvokeFunction"]
    assert statement["Resource"] == {"Fn::GetAtt": ["ProbePrivate", "Arn"]}
    for stage in STAGES:
        for function in (*CONTROLLERS, PROBER):
            actions = policy_actions(load_policy(stage, function))
            assert not any(a.startswith("lambda:") for a in actions)
    for name in ("Reconcile", "OnInstanceChange"):
        # Set by the template, from the function itself: never a name written beforehand.
        variables = resources[name]["Properties"]["Environment"]["Variables"]
        assert variables == {"LBF_PROBER_FUNCTION": {"Ref": "ProbePrivate"}}
        assert resources[name]["DependsOn"] == "ControllerInvokesProber"
        for stage in STAGES:
            assert "LBF_PROBER_FUNCTION" not in stage_env(stage)
    outputs = load_yaml_template(MERGE_TEMPLATE)["Outputs"]
    assert outputs["ProbePrivateFunctionName"]["Value"] == {"Ref": "ProbePrivate"}


@pytest.mark.parametrize("stage", STAGES)
def test_stage_names_what_the_cluster_stack_creates(stage: str) -> None:
    """cluster.yaml fixes the topic's name, so the ARN can be written before the stack exists."""
    resources = load_yaml_template(CFN_DIR / "cluster.yaml")["Resources"]
    assert resources["NoticeTopic"]["Properties"]["TopicName"] == {
        "Fn::Sub": "lb-failover-${Cluster}"
    }
    topic = stage_env(stage)["LBF_SNS_TOPIC_ARN"].rsplit(":", 1)[1]
    assert topic == f"lb-failover-{stage_env(stage)['LBF_CLUSTER']}"


@pytest.mark.parametrize("stage", STAGES)
def test_the_cluster_stack_keeps_the_push_log_the_controller_names(stage: str) -> None:
    """SendCommand names the group by convention (Settings.push_log_group); the stack creates
    exactly that group, with retention, and lets the LBs write to it. The controller's policy
    needs nothing for it (test_policy_grants_exactly_the_controllers_calls): SSM Agent writes
    the output with the LB's own role."""
    from chalicelib.config import Settings

    template = load_yaml_template(CFN_DIR / "cluster.yaml")
    group = template["Resources"]["PushLogGroup"]
    assert group["Type"] == "AWS::Logs::LogGroup"
    cluster = stage_env(stage)["LBF_CLUSTER"]
    name = group["Properties"]["LogGroupName"]["Fn::Sub"].replace("${Cluster}", cluster)
    assert name == Settings.from_env(stage_env(stage)).push_log_group
    assert group["Properties"]["RetentionInDays"] == {"Ref": "PushLogRetentionDays"}
    assert template["Parameters"]["PushLogRetentionDays"]["Default"] == 30

    policies = template["Resources"]["LoadBalancerRole"]["Properties"]["Policies"]
    statements = [s for p in policies for s in p["PolicyDocument"]["Statement"]]
    writes = [s for s in statements if "logs:PutLogEvents" in as_list(s["Action"])]
    assert writes == [
        {
            "Sid": "WritePushOutput",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            "Resource": {"Fn::GetAtt": ["PushLogGroup", "Arn"]},
        }
    ]
    granted = {a for s in statements for a in as_list(s["Action"])}
    assert "logs:CreateLogGroup" not in granted


def test_the_health_check_statements_in_deploy_doc_grant_only_health_checks() -> None:
    for statement in deploy_doc_health_check_statements():
        assert set(as_list(statement["Action"])) <= HEALTH_CHECK_ACTIONS
        for resource in as_list(statement["Resource"]):
            if resource == "*":
                assert set(as_list(statement["Action"])) <= UNSCOPABLE_ACTIONS
            else:
                assert resource == "arn:aws:route53:::healthcheck/*"


# --- .chalice/config.json ---------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_stage_settings_are_valid_for_the_controller(stage: str) -> None:
    from chalicelib.config import Settings

    settings = Settings.from_env(stage_env(stage))
    assert settings.cluster == stage_env(stage)["LBF_CLUSTER"]


@pytest.mark.parametrize("stage", STAGES)
def test_lambda_timeout_covers_the_probe_rounds_with_slack(stage: str) -> None:
    from chalicelib.config import Settings

    # The stage's own schedule, its defaults included (29 rounds 2 s apart at the defaults).
    settings = Settings.from_env(stage_env(stage))
    rounds, interval = settings.probe_rounds, settings.probe_interval
    for function in CONTROLLERS:
        timeout = function_setting(stage, function, "lambda_timeout")
        # Slack: the cold start, the inventory read before the first round, the last round's
        # actions and the report after it.
        assert rounds * interval + 20 <= timeout <= 900


@pytest.mark.parametrize("stage", STAGES)
def test_the_prober_outlives_the_controllers_wait_for_it(stage: str) -> None:
    from chalicelib.config import Settings
    from chalicelib.core.timing import PROBER_INVOKE_SECONDS

    probe_timeout = Settings.from_env(stage_env(stage)).probe_timeout
    # The controller waits LBF_PROBE_TIMEOUT + PROBER_INVOKE_SECONDS for the answer; a prober cut
    # off sooner by its own limit turns every round with a hung target into a prober fault.
    assert probe_timeout + PROBER_INVOKE_SECONDS <= function_setting(
        stage, PROBER, "lambda_timeout"
    )


def bench_data(name: str) -> dict[str, Any]:
    results = json.loads((ROOT / "bench" / "results" / "latest.json").read_text(encoding="utf-8"))
    (section,) = [s for s in results["sections"] if s["name"] == name]
    data: dict[str, Any] = section["data"]
    return data


@pytest.mark.parametrize("stage", STAGES)
def test_memory_is_the_cheapest_the_measured_cpu_allows(stage: str) -> None:
    """bench/sizing.py turns the committed cold-start and fan-out figures into sizes; the
    configuration keeps the bound (at least that) without paying for much more (within 25%)."""
    from bench import sizing
    from chalicelib.config import Settings

    probe_timeout = Settings.from_env(stage_env(stage)).probe_timeout
    tracing = bool(function_setting(stage, "reconcile", "xray"))
    controller = sizing.controller_need(bench_data("coldstart"), tracing=tracing)
    prober = sizing.prober_need(
        bench_data("coldstart"), bench_data("fanout"), timeout=probe_timeout, targets=500
    )
    for function, need in [*((f, controller) for f in CONTROLLERS), (PROBER, prober)]:
        memory = function_setting(stage, function, "lambda_memory_size")
        assert need.memory_mb <= memory <= need.memory_mb * 1.25, (function, need)


def test_no_reserved_concurrency_by_default() -> None:
    # Reserving needs 100 unreserved executions left in the account, which new accounts lack;
    # overlapping runs are safe without it (infra/DEPLOY.md shows how to turn it on).
    def keys(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                yield key
                yield from keys(value)

    assert "reserved_concurrency" not in set(keys(CONFIG))


def pinned_powertools() -> str:
    for line in (ROOT / "requirements-dev.txt").read_text(encoding="utf-8").splitlines():
        name, _, version = line.split("#")[0].strip().partition("==")
        if name.split("[")[0].strip() == "aws-lambda-powertools":
            return version.strip()
    raise AssertionError("requirements-dev.txt pins no aws-lambda-powertools")


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("function", [*CONTROLLERS, PROBER])
def test_powertools_comes_from_its_official_layer(stage: str, function: str) -> None:
    """The layer of the pinned version, for the runtime and architecture the function runs."""
    configure = load_infra_module("configure")
    region, _account = region_and_account(stage)
    # chalice picks the runtime from the interpreter that packages: the layer must match it.
    runtime = f"python{sys.version_info.major}{sys.version_info.minor}"
    architecture = function_setting(stage, function, "lambda_architecture")
    assert architecture == "arm64"  # Graviton: 20% less per GB-second than x86
    layers = function_setting(stage, function, "layers", [])
    (layer,) = layers
    prefix, _, version = layer.rpartition(":")
    assert prefix == (
        f"arn:aws:lambda:{region}:017000801446:layer:"
        f"AWSLambdaPowertoolsPythonV3-{runtime}-{architecture}"
    )
    if _account == EXAMPLE_ACCOUNT:
        # The committed examples carry the table's version; a configured stage carries what
        # AWS answered for the pinned release (infra/configure.py asks it).
        assert int(version) == configure.POWERTOOLS_LAYER_VERSIONS[pinned_powertools()]
    assert configure.layer_parameter(pinned_powertools(), architecture, runtime) == (
        f"/aws/service/powertools/python/{architecture}/python{sys.version_info.major}."
        f"{sys.version_info.minor}/{pinned_powertools()}"
    )
    env = stage_env(stage)
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "LbFailover"
    assert env["POWERTOOLS_SERVICE_NAME"].startswith("lb-failover")


@pytest.mark.parametrize("stage", STAGES)
def test_tracing_is_opt_in_and_off_costs_nothing(stage: str) -> None:
    traced = stage_setting(stage, "xray")
    if stage in ("dev", "prod"):
        assert traced is False  # configure.py's examples: X-Ray is opt-in (--xray)
    assert stage_env(stage)["POWERTOOLS_TRACE_DISABLED"] == ("false" if traced else "true")


# --- chalice package ------------------------------------------------------------------------


def chalice_package(project: Path, stage: str, out: Path) -> Path:
    chalice = Path(sys.executable).with_name("chalice")
    command = [str(chalice) if chalice.exists() else "chalice", "package", "--stage", stage]
    env = {**os.environ, "AWS_DEFAULT_REGION": region_and_account(stage)[0]}
    subprocess.run(
        [*command, "--merge-template", str(MERGE_TEMPLATE), str(out)],
        cwd=project,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out / "sam.yaml"  # YAML because the merge template is YAML


def copy_chalice_settings(project: Path) -> None:
    (project / ".chalice").mkdir(parents=True)
    for path in CHALICE_DIR.glob("*.json"):
        shutil.copy(path, project / ".chalice" / path.name)


class Packaged(NamedTuple):
    stage: str
    template: Path


@pytest.fixture(scope="module", params=STAGES)
def packaged(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Packaged:
    """The real app packaged from a copy, so no cache lands in the work tree."""
    if not (ROOT / "app.py").exists():
        pytest.skip("app.py is not written yet")
    if f"def {PROBER}(" not in (ROOT / "app.py").read_text(encoding="utf-8"):
        # The merge template refers to the prober's logical id; without the function the
        # packaged template is incomplete (test_monitoring_merges_into_the_app_and_lints covers
        # the merge with a stub until then).
        pytest.skip(f"app.py has no {PROBER} function yet")
    stage: str = request.param
    project = tmp_path_factory.mktemp(f"project-{stage}")
    shutil.copy(ROOT / "app.py", project / "app.py")
    shutil.copy(ROOT / "requirements.txt", project / "requirements.txt")
    shutil.copytree(
        ROOT / "chalicelib", project / "chalicelib", ignore=shutil.ignore_patterns("__pycache__")
    )
    copy_chalice_settings(project)
    return Packaged(stage, chalice_package(project, stage, project / "out"))


# IAM resources whose names are account-wide when given: given one, the same stage or cluster
# in a second region would collide with the first.
NAMED_IAM = {
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
}


def test_the_stage_stack_leaves_its_iam_names_to_cloudformation(packaged: Packaged) -> None:
    """CloudFormation names them after the stack and a random suffix: unique per region."""
    resources = load_yaml_template(packaged.template)["Resources"]
    roles = [r for r in resources.values() if r["Type"] in NAMED_IAM]
    assert roles
    for resource in roles:
        assert NAMED_IAM[resource["Type"]] not in resource["Properties"]


def test_the_cluster_stack_names_only_its_instance_profile() -> None:
    """The profile's name goes on the LBs' launch command, so it is fixed (with the region:
    test_a_new_cluster_name_serves_two_regions); everything else is CloudFormation's to name."""
    resources = load_yaml_template(CFN_DIR / "cluster.yaml")["Resources"]
    named = {
        logical_id
        for logical_id, r in resources.items()
        if NAMED_IAM.get(r["Type"]) in r.get("Properties", {})
    }
    assert named == {"LoadBalancerInstanceProfile"}


def test_chalice_package_passes_cfn_lint(packaged: Packaged) -> None:
    assert cfn_lint(packaged.template) == []


def test_package_is_small_and_leaves_powertools_to_the_layer(packaged: Packaged) -> None:
    with zipfile.ZipFile(packaged.template.parent / "deployment.zip") as package:
        entries = package.infolist()
    names = {e.filename for e in entries}
    assert "app.py" in names
    assert any(n.startswith("chalicelib/") for n in names)
    # The runtime brings boto3/botocore and the layer Powertools; a copy in the package would
    # shadow the layer (/var/task comes first on sys.path) and add ~20 MB with the X-Ray SDK.
    for provided in ("aws_lambda_powertools/", "aws_xray_sdk/", "botocore/", "boto3/"):
        assert not any(n.startswith(provided) for n in names), provided
    assert sum(e.file_size for e in entries) < 10 * 1024 * 1024


def load_yaml_template(path: Path) -> dict[str, Any]:
    from cfnlint.decode import decode

    template, matches = decode(str(path))
    assert not matches
    assert template is not None
    return dict(template)


def test_packaged_functions_use_the_stage_settings(packaged: Packaged) -> None:
    stage = packaged.stage
    resources = load_yaml_template(packaged.template)["Resources"]
    policy = load_policy(stage)
    for name, function in (
        ("Reconcile", "reconcile"),
        ("OnInstanceChange", "on_instance_change"),
        ("ProbePrivate", PROBER),
    ):
        properties = resources[name]["Properties"]
        assert properties["Timeout"] == function_setting(stage, function, "lambda_timeout")
        assert properties["MemorySize"] == function_setting(stage, function, "lambda_memory_size")
        assert properties["Layers"] == function_setting(stage, function, "layers")
        assert properties["Architectures"] == ["arm64"]
        assert properties["Tracing"] == (
            "Active" if function_setting(stage, function, "xray") else "PassThrough"
        )
        assert "ReservedConcurrentExecutions" not in properties
        role = resources[f"{name}Role"]["Properties"]
        (inline,) = role["Policies"]
        assert inline["PolicyDocument"] == load_policy(stage, function)
        assert "ManagedPolicyArns" not in role
        if function == PROBER:
            assert properties["VpcConfig"] == {
                "SubnetIds": function_setting(stage, function, "subnet_ids"),
                "SecurityGroupIds": function_setting(stage, function, "security_group_ids"),
            }
            assert "Events" not in properties  # invoked by the controllers only
            assert "LBF_PROBER_FUNCTION" not in properties["Environment"]["Variables"]
        else:
            assert "VpcConfig" not in properties
            assert properties["Environment"]["Variables"]["LBF_PROBER_FUNCTION"] == {
                "Ref": "ProbePrivate"
            }
    assert policy == load_policy(stage, "on_instance_change")
    schedule = resources["Reconcile"]["Properties"]["Events"]["ReconcileEvent"]
    assert schedule["Properties"]["Schedule"] == "rate(1 minute)"


def test_the_scheduled_function_is_invoked_once_and_never_late(packaged: Packaged) -> None:
    """SPEC "Functions": no retries and a maximum event age of 60 s, so a failed or late minute
    is replaced by the next scheduled run instead of probing and writing beside it. Lambda's
    defaults are two retries and six hours; the rendered template, not only the merge file,
    must carry it, because chalice writes the function and the merge only adds to it."""
    resources = load_yaml_template(packaged.template)["Resources"]
    assert resources["Reconcile"]["Properties"]["EventInvokeConfig"] == {
        "MaximumRetryAttempts": 0,
        "MaximumEventAgeInSeconds": 60,
    }
    # The SAM transform turns it into the resource Lambda reads: cfn-lint checks it through it.
    assert cfn_lint(packaged.template) == []


def test_monitoring_merges_into_the_app_and_lints(tmp_path: Path) -> None:
    """Runs without app.py: a stub with the same three handlers stands in for it."""
    project = tmp_path / "stub"
    project.mkdir()
    (project / "app.py").write_text(
        "from chalice import Chalice, Rate\n"
        "app = Chalice(app_name='lb-failover')\n"
        "@app.schedule(Rate(1, unit=Rate.MINUTES))\n"
        "def reconcile(event):\n    return None\n"
        "@app.on_cw_event({'source': ['aws.ec2'], "
        "'detail-type': ['EC2 Instance State-change Notification']})\n"
        "def on_instance_change(event):\n    return None\n"
        "@app.lambda_function(name='probe_private')\n"
        "def probe_private(event, context):\n    return None\n",
        encoding="utf-8",
    )
    (project / "requirements.txt").write_text("", encoding="utf-8")
    copy_chalice_settings(project)
    assert cfn_lint(chalice_package(project, "prod", tmp_path / "out")) == []


# --- alarms and dashboard -------------------------------------------------------------------


def alarms() -> dict[str, dict[str, Any]]:
    resources = load_yaml_template(MERGE_TEMPLATE)["Resources"]
    return {
        name: dict(r["Properties"])
        for name, r in resources.items()
        if r.get("Type") == "AWS::CloudWatch::Alarm"  # the functions only get merged settings
    }


def emf_metric(alarm: dict[str, Any]) -> str:
    assert alarm["Namespace"] == {"Ref": "MetricsNamespace"}
    assert alarm["Dimensions"] == [{"Name": "service", "Value": {"Ref": "MetricsService"}}]
    name: str = alarm["MetricName"]
    return name


def test_monitoring_parameters_default_to_the_prod_metrics() -> None:
    parameters = load_yaml_template(MERGE_TEMPLATE)["Parameters"]
    env = stage_env("prod")
    assert parameters["MetricsNamespace"]["Default"] == env["POWERTOOLS_METRICS_NAMESPACE"]
    assert parameters["MetricsService"]["Default"] == env["POWERTOOLS_SERVICE_NAME"]


def test_alarm_when_no_lb_is_healthy() -> None:
    alarm = alarms()["NoHealthyLoadBalancer"]
    assert emf_metric(alarm) == "HealthyLBs"
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "Minimum",
        1,
        "LessThanThreshold",
    )


def test_alarm_when_runs_are_refused_for_their_configuration() -> None:
    """A run of a cluster that does not own its domain writes nothing and sends no notice: this
    alarm on the one metric app.py publishes for it is how an operator hears of it."""
    alarm = alarms()["ConfigurationErrors"]
    assert emf_metric(alarm) == "ConfigurationErrors"
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "Sum",
        1,
        "GreaterThanOrEqualToThreshold",
    )
    assert alarm["TreatMissingData"] == "notBreaching"  # only refused runs publish it
    if (ROOT / "app.py").exists():
        assert 'name="ConfigurationErrors"' in (ROOT / "app.py").read_text(encoding="utf-8")


def test_alarm_when_backend_pushes_keep_failing() -> None:
    alarm = alarms()["BackendPushFailures"]
    assert emf_metric(alarm) == "ActionErrors"
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["Threshold"] == 1


def test_alarm_on_run_errors_of_both_functions() -> None:
    metrics = alarms()["RunErrors"]["Metrics"]
    watched = {
        m["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"]
        for m in metrics
        if "MetricStat" in m and m["MetricStat"]["Metric"]["MetricName"] == "Errors"
    }
    assert watched == {"Reconcile", "OnInstanceChange"}


def test_alarm_when_the_controller_is_not_running() -> None:
    alarm = alarms()["ControllerNotRunning"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", "Invocations")
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "Reconcile"}}]
    assert alarm["TreatMissingData"] == "breaching"
    assert alarm["Period"] * alarm["EvaluationPeriods"] == 180
    assert alarm["DatapointsToAlarm"] == alarm["EvaluationPeriods"]


def test_every_alarm_notifies_the_topic() -> None:
    for name, alarm in alarms().items():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopicArn"}], name


def test_dashboard_and_alarms_use_the_metrics_app_py_emits() -> None:
    body = load_yaml_template(MERGE_TEMPLATE)["Resources"]["Dashboard"]["Properties"]
    text = json.dumps(body["DashboardBody"])
    names = ("HealthyLBs", "Failovers", "ProbeFailures", "ActionErrors", "RunSeconds")
    for name in names:
        assert f'\\"{name}\\"' in text, name
    if (ROOT / "app.py").exists():
        source = (ROOT / "app.py").read_text(encoding="utf-8")
        for name in names:
            assert f'name="{name}"' in source, name


# --- the stacks in moto -------------------------------------------------------------------


def test_cluster_and_document_stacks_create_their_resources_in_moto(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    use_fake_credentials(monkeypatch)
    with moto.mock_aws():
        cloudformation = boto3.client("cloudformation", region_name="eu-west-1")
        cloudformation.create_stack(
            StackName="lbf-web",
            TemplateBody=(CFN_DIR / "cluster.yaml").read_text(encoding="utf-8"),
            Parameters=[{"ParameterKey": "Cluster", "ParameterValue": "web"}],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
        )
        topics = boto3.client("sns", region_name="eu-west-1").list_topics()["Topics"]
        assert [t["TopicArn"].rsplit(":", 1)[1] for t in topics] == ["lb-failover-web"]
        iam = boto3.client("iam", region_name="eu-west-1")
        profile = iam.get_instance_profile(InstanceProfileName="lb-failover-web-lb")
        assert len(profile["InstanceProfile"]["Roles"]) == 1
        groups = boto3.client("logs", region_name="eu-west-1").describe_log_groups()["logGroups"]
        assert [(g["logGroupName"], g.get("retentionInDays")) for g in groups] == [
            ("/lbf/web/pushes", 30)
        ]

        if DOCUMENT_SOURCE.exists():
            template = json.loads((CFN_DIR / "ssm-document.json").read_text(encoding="utf-8"))
            for resource in template["Resources"].values():
                # moto takes Content only as a JSON string; CloudFormation takes both forms.
                properties = resource["Properties"]
                properties["Content"] = json.dumps(properties["Content"])
            cloudformation.create_stack(StackName="lbf-document", TemplateBody=json.dumps(template))
            ssm = boto3.client("ssm", region_name="eu-west-1")
            for name in ("LbFailover-UpdateBackends", "LbFailover-UpdateConfig"):
                described = ssm.describe_document(Name=name)["Document"]
                assert described["DocumentType"] == "Command"


def test_the_cluster_stack_names_its_instance_profile_as_core_names_does() -> None:
    from chalicelib.core.names import instance_profile_name

    profile = load_yaml_template(CFN_DIR / "cluster.yaml")["Resources"][
        "LoadBalancerInstanceProfile"
    ]["Properties"]["InstanceProfileName"]
    condition, regional, legacy = profile["Fn::If"]
    assert condition == "RegionInIamNames"
    sub = {"${Cluster}": "web", "${AWS::Region}": "eu-west-1"}
    for template, region in ((regional, "eu-west-1"), (legacy, None)):
        name = template["Fn::Sub"]
        for key, value in sub.items():
            name = name.replace(key, value)
        assert name == instance_profile_name("web", region)


def cluster_stack(cloudformation: Any, template: str, cluster: str, *scope: str) -> None:
    parameters = [{"ParameterKey": "Cluster", "ParameterValue": cluster}]
    parameters += [{"ParameterKey": "IamNames", "ParameterValue": s} for s in scope]
    cloudformation.create_stack(
        StackName=f"lbf-{cluster}",
        TemplateBody=template,
        Parameters=parameters,
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
    )


def test_a_new_cluster_name_serves_two_regions(monkeypatch: pytest.MonkeyPatch) -> None:
    """IAM names are account-wide: with IamNames=region the same cluster name gets one instance
    profile per region; without, the second region's stack would collide with the first's."""
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    use_fake_credentials(monkeypatch)
    template = (CFN_DIR / "cluster.yaml").read_text(encoding="utf-8")
    with moto.mock_aws():
        for region in ("eu-west-1", "us-east-1"):
            cloudformation = boto3.client("cloudformation", region_name=region)
            cluster_stack(cloudformation, template, "web", "region")
            (stack,) = cloudformation.describe_stacks(StackName="lbf-web")["Stacks"]
            assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
        iam = boto3.client("iam", region_name="eu-west-1")
        names = {p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"]}
        assert names == {"lb-failover-web-eu-west-1-lb", "lb-failover-web-us-east-1-lb"}


def test_an_existing_cluster_stack_keeps_its_instance_profile_on_upgrade(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The upgrade path: a stack made by the template before IamNames, updated with this one
    as `aws cloudformation deploy` does (the new parameter at its default), keeps the profile
    its running LBs were launched with. moto keeps a resource whose name an update changes, where
    CloudFormation replaces it: so the name the update asks for is resolved from the template
    first, and moto shows the update itself goes through."""
    template = load_yaml_template(CFN_DIR / "cluster.yaml")
    default = template["Parameters"]["IamNames"]["Default"]
    ((ref, value),) = [template["Conditions"]["RegionInIamNames"]["Fn::Equals"]]
    assert ref == {"Ref": "IamNames"}
    properties = template["Resources"]["LoadBalancerInstanceProfile"]["Properties"]
    _, regional, legacy = properties["InstanceProfileName"]["Fn::If"]
    asked = regional if default == value else legacy
    assert asked == {"Fn::Sub": "lb-failover-${Cluster}-lb"}

    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    use_fake_credentials(monkeypatch)
    before = json.loads(json.dumps(load_yaml_template(CFN_DIR / "cluster.yaml")))
    del before["Parameters"]["IamNames"]
    del before["Conditions"]["RegionInIamNames"]
    before["Parameters"]["Cluster"]["AllowedPattern"] = "[A-Za-z0-9._-]{1,128}"
    profile = before["Resources"]["LoadBalancerInstanceProfile"]["Properties"]
    profile["InstanceProfileName"] = {"Fn::Sub": "lb-failover-${Cluster}-lb"}
    with moto.mock_aws():
        cloudformation = boto3.client("cloudformation", region_name="eu-west-1")
        cluster_stack(cloudformation, json.dumps(before), "web")
        iam = boto3.client("iam", region_name="eu-west-1")
        held = iam.get_instance_profile(InstanceProfileName="lb-failover-web-lb")["InstanceProfile"]

        cloudformation.update_stack(
            StackName="lbf-web",
            TemplateBody=(CFN_DIR / "cluster.yaml").read_text(encoding="utf-8"),
            Parameters=[{"ParameterKey": "Cluster", "UsePreviousValue": True}],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
        )
        (stack,) = cloudformation.describe_stacks(StackName="lbf-web")["Stacks"]
        assert stack["StackStatus"] == "UPDATE_COMPLETE", stack.get("StackStatusReason")
        profiles = iam.list_instance_profiles()["InstanceProfiles"]
        assert [p["InstanceProfileName"] for p in profiles] == ["lb-failover-web-lb"]
        assert profiles[0]["InstanceProfileId"] == held["InstanceProfileId"]
        assert len(profiles[0]["Roles"]) == 1


def test_deploy_doc_shows_the_health_check_statements_configure_writes() -> None:
    shown = deploy_doc_health_check_statements()
    written = statements(generated_policy({"LBF_ROUTE53_HEALTH_CHECKS": "true"}))
    assert [s for s in written if s["Sid"] in {d["Sid"] for d in shown}] == shown
