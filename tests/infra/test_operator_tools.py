"""infra/configure.py and infra/teardown.py, the operator's deploy and removal commands.

They run against moto's server (standin/aws.py: a public zone for the domain) wherever moto
answers as AWS does. botocore's Stubber stands in where it does not:
- the Powertools layer lookup: AWS's public parameter /aws/service/powertools/... cannot exist in
  moto, which refuses every name under /aws/ ("reserved parameter name");
- the stage stack's removal is exercised in moto with a stand-in stack (moto's CloudFormation has
  no SAM transform, so the packaged stage cannot be created there), its order of calls recorded.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from standin.aws import LocalAws, local_aws
from tests.kit.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "infra" / "stages" / ".chalice"
DOMAIN = "edge.tools.example.com"
LAYER = "arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-{py}-arm64:27"


def load(name: str) -> ModuleType:
    return load_script(ROOT / "infra" / f"{name}.py", f"lbf_infra_{name}")


configure = load("configure")
teardown = load("teardown")
PY = f"python{sys.version_info.major}{sys.version_info.minor}"


@pytest.fixture(scope="module")
def aws() -> Any:
    with local_aws(DOMAIN) as running:
        yield running


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A checkout whose stage files are the committed examples, so the tools write there and not
    in the work tree."""
    (tmp_path / ".chalice").mkdir()
    for path in EXAMPLES.glob("*.json"):
        shutil.copy(path, tmp_path / ".chalice" / path.name)
    shutil.copy(ROOT / "requirements-dev.txt", tmp_path / "requirements-dev.txt")
    return tmp_path


def session() -> Any:
    return boto3.Session(region_name="us-east-1")


def configure_args(project: Path, *extra: str, domain: str = DOMAIN) -> list[str]:
    return [
        "--stage",
        "prod",
        "--cluster",
        "tools",
        "--domain",
        domain,
        "--region",
        "us-east-1",
        "--subnets",
        "subnet-0123456789abcdef0,subnet-0123456789abcdef1",
        "--security-group",
        "sg-0123456789abcdef0",
        "--layer-arn",
        LAYER.format(py=PY),
        "--project",
        str(project),
        *extra,
    ]


def stage(project: Path, name: str = "prod") -> dict[str, Any]:
    config = json.loads((project / ".chalice" / "config.json").read_text())
    found: dict[str, Any] = config["stages"][name]
    return found


# --- configure ------------------------------------------------------------------------------


def test_the_committed_example_files_are_what_configure_writes() -> None:
    """The examples in infra/stages/.chalice are configure's output for the example inputs, byte
    for byte, so the tool and the files the suite checks (test_deploy_stack.py) cannot drift."""
    config = json.loads((EXAMPLES / "config.json").read_text())
    written: dict[str, str] = {}
    for name, cluster, domain in (
        ("dev", "web-dev", "edge-dev.example.com"),
        ("prod", "web", "edge.example.com"),
    ):
        inputs = configure.check(
            configure.Inputs(
                stage=name,
                cluster=cluster,
                domain=domain,
                region="eu-west-1",
                zone_id="Z0000000000EXAMPLE",
                subnets=("subnet-00000000000000001", "subnet-00000000000000002"),
                security_group="sg-00000000000000001",
            )
        )
        layer = config["stages"][name]["layers"][0]
        files = configure.render(
            inputs, configure.Looked("111122223333", "Z0000000000EXAMPLE", layer), config
        )
        config = json.loads(files["config.json"])
        written |= files
    for name, text in written.items():
        assert (EXAMPLES / name).read_text() == text, name


@pytest.mark.parametrize("flags", [(), ("--no-xray",), ("--xray",)], ids=["default", "off", "on"])
def test_x_ray_is_opt_in_on_every_stage_prod_included(
    aws: LocalAws, project: Path, flags: tuple[str, ...]
) -> None:
    """Traced, the controller needs 256 MB to start as fast, billed for the whole minute of every
    run: over the $10 cost target for 2 LBs and 20 web servers. `--xray` asks for it."""
    assert configure.main(configure_args(project, *flags), session()) == 0
    written = stage(project)
    traced = flags == ("--xray",)
    assert written["xray"] is traced
    assert written["environment_variables"]["POWERTOOLS_TRACE_DISABLED"] == str(not traced).lower()
    memory = {written["lambda_functions"][f]["lambda_memory_size"] for f in configure.CONTROLLERS}
    assert memory == {256 if traced else 192}
    policy = (project / ".chalice" / "policy-prod.json").read_text()
    assert ("xray:PutTraceSegments" in policy) is traced


def test_configure_writes_a_stage_the_controller_accepts(aws: LocalAws, project: Path) -> None:
    assert configure.main(configure_args(project, "--set", "LBF_TTL=30"), session()) == 0
    written = stage(project)
    env = written["environment_variables"]
    assert env["LBF_HOSTED_ZONE_ID"] == aws.zone_id  # found by the domain's name
    assert env["LBF_SNS_TOPIC_ARN"] == "arn:aws:sns:us-east-1:123456789012:lb-failover-tools"
    assert env["LBF_TTL"] == "30"
    assert written["lambda_architecture"] == "arm64"
    prober = written["lambda_functions"]["probe_private"]
    assert prober["subnet_ids"] == ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
    assert prober["security_group_ids"] == ["sg-0123456789abcdef0"]
    for function in ("reconcile", "on_instance_change"):
        assert "subnet_ids" not in written["lambda_functions"][function]
    policy = json.loads((project / ".chalice" / "policy-prod.json").read_text())
    text = json.dumps(policy)
    assert f"hostedzone/{aws.zone_id}" in text
    assert "*.edge.tools.example.com" in text
    assert "parameter/lbf/tools/backends" in text
    assert "ec2:CreateNetworkInterface" not in text
    prober_policy = (project / ".chalice" / "policy-prod-prober.json").read_text()
    assert "subnet/subnet-0123456789abcdef1" in prober_policy

    from chalicelib.config import Settings

    settings = Settings.from_env({"POWERTOOLS_METRICS_NAMESPACE": "LbFailover", **env})
    assert (settings.cluster, settings.domain) == ("tools", DOMAIN)


def test_running_it_again_keeps_what_the_operator_set(aws: LocalAws, project: Path) -> None:
    assert configure.main(configure_args(project, "--set", "LBF_PROBE_INTERVAL=5"), session()) == 0
    config = json.loads((project / ".chalice" / "config.json").read_text())
    config["stages"]["prod"]["lambda_functions"]["reconcile"]["lambda_memory_size"] = 512
    (project / ".chalice" / "config.json").write_text(json.dumps(config))
    assert configure.main(configure_args(project), session()) == 0
    written = stage(project)
    assert written["environment_variables"]["LBF_PROBE_INTERVAL"] == "5"
    assert written["lambda_functions"]["reconcile"]["lambda_memory_size"] == 512
    assert stage(project, "dev")["environment_variables"]["LBF_CLUSTER"] == "web-dev"


def test_with_no_private_target_the_prober_stays_idle_outside_the_vpc(
    aws: LocalAws, project: Path
) -> None:
    args = [a for a in configure_args(project) if "subnet" not in a and not a.startswith("sg-")]
    args = [a for a in args if a not in ("--subnets", "--security-group")]
    assert configure.main([*args, "--pool-address", "public"], session()) == 0
    written = stage(project)
    assert written["environment_variables"]["LBF_POOL_ADDRESS"] == "public"
    prober = written["lambda_functions"]["probe_private"]
    assert "subnet_ids" not in prober
    assert "security_group_ids" not in prober
    policy = (project / ".chalice" / "policy-prod-prober.json").read_text()
    assert "NetworkInterface" not in policy


class NoAws:
    """A session that fails the test if anything asks AWS."""

    def client(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an AWS call before the input was checked")


@pytest.mark.parametrize(
    ("change", "option"),
    [
        ({"--domain": "not a domain"}, "--domain"),
        ({"--region": "Europe"}, "--region"),
        ({"--cluster": "web cluster"}, "--cluster"),
        ({"--stage": "my_stage"}, "--stage"),  # the stack lb-failover-my_stage cannot exist
        ({"--subnets": "subnet-0123456789abcdef0"}, "--subnets"),
        ({"--security-group": "default"}, "--security-group"),
        ({"--zone-id": "zone one"}, "--zone-id"),
        ({"--pool-address": "internal"}, "--pool-address"),
        ({"--layer-arn": "arn:aws:lambda:us-east-1:017000801446:layer:Other:1"}, "--layer-arn"),
    ],
)
def test_bad_input_stops_before_any_aws_call_naming_the_option(
    project: Path, change: dict[str, str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = configure_args(project)
    for key, value in change.items():
        if key in args:
            args[args.index(key) + 1] = value
        else:
            args += [key, value]
    before = (project / ".chalice" / "config.json").read_text()
    assert configure.main(args, NoAws()) == 2
    assert option in capsys.readouterr().err
    assert (project / ".chalice" / "config.json").read_text() == before


def test_the_x86_layer_is_refused_for_arm64_functions(project: Path) -> None:
    arn = LAYER.format(py=PY).replace("arm64", "x86_64")
    args = configure_args(project)
    args[args.index("--layer-arn") + 1] = arn
    assert configure.main(args, NoAws()) == 2


def make_zone(aws: LocalAws, name: str, *, private: bool = False) -> str:
    extra: dict[str, Any] = {}
    if private:
        vpc = aws.client("ec2").create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        extra = {
            "VPC": {"VPCRegion": "us-east-1", "VPCId": vpc},
            "HostedZoneConfig": {"PrivateZone": True, "Comment": ""},
        }
    zone = aws.client("route53").create_hosted_zone(
        Name=name, CallerReference=f"{name}-{private}", **extra
    )
    return str(zone["HostedZone"]["Id"]).split("/")[-1]


def test_a_private_zone_is_refused(
    aws: LocalAws, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zone = make_zone(aws, "private.tools.example.com", private=True)
    args = configure_args(project, "--zone-id", zone, domain="edge.private.tools.example.com")
    assert configure.main(args, session()) == 2
    assert "private hosted zone" in capsys.readouterr().err
    # Without --zone-id the lookup by name skips it and finds no public zone that holds it ...
    assert (
        configure.main(configure_args(project, domain="lb.other-private.example"), session()) == 2
    )


def test_a_zone_that_does_not_hold_the_domain_is_refused(
    aws: LocalAws, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The zone edge.tools.example.com is no parent of "xedge.tools.example.com", only a suffix.
    args = configure_args(project, "--zone-id", aws.zone_id, domain="lb.xedge.tools.example.com")
    assert configure.main(args, session()) == 2
    assert "does not hold" in capsys.readouterr().err


def test_a_domain_delegated_to_a_more_specific_zone_is_refused(
    aws: LocalAws, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parent = make_zone(aws, "shadow.example.com")
    child = make_zone(aws, "edge.shadow.example.com")
    args = configure_args(project, "--zone-id", parent, domain="lb.edge.shadow.example.com")
    assert configure.main(args, session()) == 2
    assert child in capsys.readouterr().err
    # Found by name, the more specific zone is the one chosen.
    assert (
        configure.main(configure_args(project, domain="lb.edge.shadow.example.com"), session()) == 0
    )
    assert stage(project)["environment_variables"]["LBF_HOSTED_ZONE_ID"] == child


def test_the_layer_is_looked_up_for_the_pinned_version_and_arm64(project: Path) -> None:
    """Stubber: moto cannot hold AWS's public /aws/service/... parameters."""
    ssm = boto3.client("ssm", region_name="eu-west-1")
    version = configure.pinned_powertools(project)
    name = f"/aws/service/powertools/python/arm64/python3.{sys.version_info.minor}/{version}"
    good = LAYER.format(py=PY).replace("us-east-1", "eu-west-1")
    with Stubber(ssm) as stub:
        stub.add_response(
            "get_parameter",
            {"Parameter": {"Name": name, "Type": "String", "Value": good}},
            {"Name": name},
        )
        assert configure.find_layer(ssm, version, "eu-west-1") == good
        stub.add_response(
            "get_parameter",
            {
                "Parameter": {
                    "Name": name,
                    "Type": "String",
                    "Value": good.replace("arm64", "x86_64"),
                }
            },
            {"Name": name},
        )
        with pytest.raises(configure.ConfigureError, match="arm64"):
            configure.find_layer(ssm, version, "eu-west-1")
        stub.add_client_error("get_parameter", "ParameterNotFound", expected_params={"Name": name})
        with pytest.raises(configure.ConfigureError, match="publishes no Powertools"):
            configure.find_layer(ssm, version, "eu-west-1")


# --- teardown -------------------------------------------------------------------------------

STAND_IN_STAGE = {
    # moto cannot expand the packaged SAM stage: a stack with the same kind of schedule stands in.
    "Resources": {
        "ReconcileReconcileEvent": {
            "Type": "AWS::Events::Rule",
            "Properties": {"ScheduleExpression": "rate(1 minute)", "State": "ENABLED"},
        }
    }
}


class Recorder:
    """Every API call, in order, as `service.Operation`."""

    def __init__(self, session: Any) -> None:
        self.calls: list[str] = []
        session.events.register("before-call", self._before)

    def _before(self, model: Any, **kwargs: Any) -> None:
        self.calls.append(f"{model.service_model.endpoint_prefix}.{model.name}")


def test_teardown_stops_the_schedule_first_and_removes_what_the_cluster_left(
    aws: LocalAws, project: Path
) -> None:
    region = "us-east-1"
    cloudformation = aws.client("cloudformation")
    cloudformation.create_stack(
        StackName="lb-failover-gone", TemplateBody=json.dumps(STAND_IN_STAGE)
    )
    network = (ROOT / "infra" / "cloudformation" / "network.yaml").read_text()
    vpc = aws.client("ec2").create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    cloudformation.create_stack(
        StackName="lbf-network-gone",
        TemplateBody=network,
        Parameters=[
            {"ParameterKey": "VpcId", "ParameterValue": vpc},
            {"ParameterKey": "VpcCidr", "ParameterValue": "10.20.0.0/16"},
            {"ParameterKey": "PrivateSubnetCidrA", "ParameterValue": "10.20.1.0/24"},
            {"ParameterKey": "PrivateSubnetCidrB", "ParameterValue": "10.20.2.0/24"},
        ],
    )
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cloudformation.describe_stacks(StackName="lbf-network-gone")["Stacks"][0][
            "Outputs"
        ]
    }
    subnet = outputs["ProberSubnetIds"].split(",")[0]
    ec2 = aws.client("ec2")
    eni = ec2.create_network_interface(
        SubnetId=subnet,
        Groups=[outputs["ProberSecurityGroupId"]],
        Description="AWS Lambda VPC ENI-lb-failover-gone-ProbePrivate-1a2b3c",
    )["NetworkInterface"]["NetworkInterfaceId"]

    domain = "gone.edge.tools.example.com"
    route53 = aws.client("route53")

    def record(name: str, kind: str, values: list[str]) -> dict[str, Any]:
        return {
            "Action": "CREATE",
            "ResourceRecordSet": {
                "Name": name,
                "Type": kind,
                "TTL": 60,
                "ResourceRecords": [{"Value": v} for v in values],
            },
        }

    route53.change_resource_record_sets(
        HostedZoneId=aws.zone_id,
        ChangeBatch={
            "Changes": [
                record(f"lb.{domain}", "A", ["192.0.2.10"]),
                record(f"lb1.{domain}", "A", ["192.0.2.10"]),
                record(f"_lbf.{domain}", "TXT", ['"lb"', '"lb1"', '"lb2"']),
                record(f"www.{domain}", "A", ["192.0.2.99"]),  # not the controller's
            ]
        },
    )
    ssm = aws.client("ssm")
    for name in ("backends", "lbs", "notices", "paused"):
        ssm.put_parameter(Name=f"/lbf/gone/{name}", Value="x", Type="String")
    ssm.put_parameter(Name="/lbf/gone-too/backends", Value="x", Type="String")
    ssm.put_parameter(Name="/lbf/other/backends", Value="x", Type="String")

    from chalicelib.core.second_opinion import caller_reference

    config = {
        "IPAddress": "192.0.2.10",
        "Port": 80,
        "Type": "HTTP",
        "ResourcePath": "/health",
        "RequestInterval": 30,
        "FailureThreshold": 3,
    }
    made = route53.create_health_check(
        CallerReference=caller_reference("gone", "i-0123456789abcdef0", 1700000000),
        HealthCheckConfig=config,
    )["HealthCheck"]["Id"]
    tagged = route53.create_health_check(CallerReference="by-hand-1", HealthCheckConfig=config)[
        "HealthCheck"
    ]["Id"]
    route53.change_tags_for_resource(
        ResourceType="healthcheck",
        ResourceId=tagged,
        AddTags=[{"Key": "lbf:cluster", "Value": "gone"}],
    )
    other = route53.create_health_check(CallerReference="someone-else", HealthCheckConfig=config)[
        "HealthCheck"
    ]["Id"]

    calls = session()
    recorder = Recorder(calls)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:  # Lambda lets go of its interface a while after the function
            ec2.delete_network_interface(NetworkInterfaceId=eni)

    args = [
        "--stage",
        "gone",
        "--region",
        region,
        "--cluster",
        "gone",
        "--domain",
        domain,
        "--zone-id",
        aws.zone_id,
        "--with-network",
        "lbf-network-gone",
        "--yes",
        "--project",
        str(project),
    ]
    assert teardown.main(args, calls, sleep=sleep, say=lambda _m: None) == 0

    # The schedule stops before anything goes, and a run already started may end first.
    first_delete = recorder.calls.index("cloudformation.DeleteStack")
    assert "events.DisableRule" in recorder.calls[:first_delete]
    assert sleeps[0] == teardown.CONTROLLER_TIMEOUT_S
    # The network goes only once Lambda's interface is gone.
    last_delete = len(recorder.calls) - 1 - recorder.calls[::-1].index("cloudformation.DeleteStack")
    assert recorder.calls[:last_delete].count("ec2.DescribeNetworkInterfaces") == 3
    stacks = {s["StackName"] for s in cloudformation.describe_stacks()["Stacks"]}
    assert not {"lb-failover-gone", "lbf-network-gone"} & stacks

    left = {
        r["Name"].rstrip(".")
        for r in route53.list_resource_record_sets(HostedZoneId=aws.zone_id)["ResourceRecordSets"]
    }
    assert not {f"lb.{domain}", f"lb1.{domain}", f"_lbf.{domain}"} & left
    assert f"www.{domain}" in left
    remaining = {
        p["Name"] for p in ssm.get_parameters_by_path(Path="/lbf/", Recursive=True)["Parameters"]
    }
    assert remaining == {"/lbf/gone-too/backends", "/lbf/other/backends"}
    checks = {c["Id"] for c in route53.list_health_checks()["HealthChecks"]}
    assert made not in checks
    assert tagged not in checks
    assert other in checks


def test_teardown_without_a_cluster_stops_before_any_aws_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--stage", "nowhere", "--region", "us-east-1", "--yes", "--project", str(tmp_path)]
    assert teardown.main(args, NoAws()) == 2
    assert "--cluster" in capsys.readouterr().err


def test_teardown_refuses_a_prefix_wider_than_one_cluster(project: Path) -> None:
    args = ["--stage", "prod", "--region", "eu-west-1", "--parameter-prefix", "/lbf", "--yes"]
    assert teardown.main([*args, "--project", str(project)], NoAws()) == 2


def test_teardown_gives_up_on_interfaces_lambda_keeps(aws: LocalAws) -> None:
    """Deleting the network while Lambda holds an interface fails after a long wait: say so."""
    vpc = aws.client("ec2").create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    cloudformation = aws.client("cloudformation")
    cloudformation.create_stack(
        StackName="lbf-network-kept",
        TemplateBody=(ROOT / "infra" / "cloudformation" / "network.yaml").read_text(),
        Parameters=[
            {"ParameterKey": "VpcId", "ParameterValue": vpc},
            {"ParameterKey": "VpcCidr", "ParameterValue": "10.30.0.0/16"},
            {"ParameterKey": "PrivateSubnetCidrA", "ParameterValue": "10.30.1.0/24"},
            {"ParameterKey": "PrivateSubnetCidrB", "ParameterValue": "10.30.2.0/24"},
        ],
    )
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cloudformation.describe_stacks(StackName="lbf-network-kept")["Stacks"][0][
            "Outputs"
        ]
    }
    aws.client("ec2").create_network_interface(
        SubnetId=outputs["ProberSubnetIds"].split(",")[0],
        Groups=[outputs["ProberSecurityGroupId"]],
        Description="AWS Lambda VPC ENI-kept",
    )
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    target = teardown.Target(
        stage="kept", region="us-east-1", cluster="kept", domain=DOMAIN, zone_id="Z", prefix="/k"
    )
    work = teardown.Teardown(target, session(), sleep=sleep, clock=lambda: now[0], say=print)
    with pytest.raises(teardown.TeardownError, match="still in"):
        work.wait_for_lambda_interfaces("lbf-network-kept")
    assert now[0] >= teardown.ENI_WAIT_S


def test_the_old_network_goes_only_once_no_function_runs_in_it(
    aws: LocalAws, capsys: pytest.CaptureFixture[str]
) -> None:
    """The upgrade's last step: a controller still in the old subnets keeps its network."""
    import io
    import zipfile

    vpc = aws.client("ec2").create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    cloudformation = aws.client("cloudformation")
    cloudformation.create_stack(
        StackName="lbf-network-old",
        TemplateBody=(ROOT / "infra" / "cloudformation" / "network.yaml").read_text(),
        Parameters=[
            {"ParameterKey": "VpcId", "ParameterValue": vpc},
            {"ParameterKey": "VpcCidr", "ParameterValue": "10.40.0.0/16"},
            {"ParameterKey": "PrivateSubnetCidrA", "ParameterValue": "10.40.1.0/24"},
            {"ParameterKey": "PrivateSubnetCidrB", "ParameterValue": "10.40.2.0/24"},
        ],
    )
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cloudformation.describe_stacks(StackName="lbf-network-old")["Stacks"][0]["Outputs"]
    }
    role = aws.client("iam").create_role(
        RoleName="lbf-old-controller",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def reconcile(event, context):\n    return None\n")
    functions = boto3.client("lambda", endpoint_url=aws.endpoint, region_name="us-east-1")
    functions.create_function(
        FunctionName="lb-failover-old-Reconcile-1A2B",
        Runtime="python3.11",
        Role=role,
        Handler="app.reconcile",
        Code={"ZipFile": code.getvalue()},
        VpcConfig={
            "SubnetIds": outputs["ProberSubnetIds"].split(","),
            "SecurityGroupIds": [outputs["ProberSecurityGroupId"]],
        },
    )
    args = ["--network-only", "lbf-network-old", "--region", "us-east-1", "--yes"]
    assert teardown.main(args, session(), sleep=lambda _s: None, say=lambda _m: None) == 1
    assert "lb-failover-old-Reconcile-1A2B" in capsys.readouterr().err
    stacks = {s["StackName"] for s in cloudformation.describe_stacks()["Stacks"]}
    assert "lbf-network-old" in stacks

    functions.delete_function(FunctionName="lb-failover-old-Reconcile-1A2B")
    assert teardown.main(args, session(), sleep=lambda _s: None, say=lambda _m: None) == 0
    stacks = {s["StackName"] for s in cloudformation.describe_stacks()["Stacks"]}
    assert "lbf-network-old" not in stacks


def test_a_new_stage_gets_the_measured_memory_sizes() -> None:
    """Without an earlier stage to keep sizes from, configure writes the committed ones, which
    test_deploy_stack.py holds to bench/sizing.py's reading of the measurements."""
    committed = json.loads((EXAMPLES / "config.json").read_text())["stages"]
    for name in ("dev", "prod"):
        inputs = configure.check(
            configure.Inputs(
                stage=name,
                cluster="c",
                domain="c.example.com",
                region="eu-west-1",
                zone_id="Z1",
                subnets=("subnet-00000000000000001", "subnet-00000000000000002"),
                security_group="sg-00000000000000001",
            )
        )
        looked = configure.Looked("111122223333", "Z1", LAYER.format(py=PY))
        fresh = json.loads(configure.render(inputs, looked, {})["config.json"])["stages"][name]
        for function, settings in committed[name]["lambda_functions"].items():
            assert (
                fresh["lambda_functions"][function]["lambda_memory_size"]
                == settings["lambda_memory_size"]
            ), (name, function)


# --- what configure derives and refuses -----------------------------------------------------


def test_the_probers_timeout_follows_the_probe_settings(aws: LocalAws, project: Path) -> None:
    """A valid schedule with a 12 s probe: the controller waits 13 s for the prober, so a prober
    cut off at a fixed 10 s would turn every round with a hung private target into a fault."""
    args = configure_args(
        project,
        *("--set", "LBF_PROBE_TIMEOUT=12"),
        *("--set", "LBF_PROBE_INTERVAL=15"),
        *("--set", "LBF_PROBE_ROUNDS=4"),
        *("--set", "LBF_POOL_INTERVAL=15"),
    )
    assert configure.main(args, session()) == 0
    prober = stage(project)["lambda_functions"]["probe_private"]
    assert prober["lambda_timeout"] >= 12 + 1
    # Back to the defaults: the limit follows them down again, nothing is kept from before.
    config = json.loads((project / ".chalice" / "config.json").read_text())
    for name in (
        "LBF_PROBE_TIMEOUT",
        "LBF_PROBE_INTERVAL",
        "LBF_PROBE_ROUNDS",
        "LBF_POOL_INTERVAL",
    ):
        del config["stages"]["prod"]["environment_variables"][name]
    (project / ".chalice" / "config.json").write_text(json.dumps(config))
    assert configure.main(configure_args(project), session()) == 0
    assert stage(project)["lambda_functions"]["probe_private"]["lambda_timeout"] == 10


@pytest.mark.parametrize(
    ("sets", "named"),
    [
        # The default interval is 2 s: a 12 s timeout makes every run exit 2, naming the
        # interval to raise.
        (["LBF_PROBE_TIMEOUT=12"], "LBF_PROBE_INTERVAL"),
        (["LBF_PROBE_ROUNDS=30"], "LBF_PROBE_ROUNDS"),
        # The pool's path through the deployed prober function: 9.5 s + 1 s of invoke.
        (["LBF_PROBE_INTERVAL=10", "LBF_PROBE_TIMEOUT=9.5"], "LBF_POOL_INTERVAL"),
        (["LBF_TTL=soon"], "LBF_TTL"),
        (["LBF_MODE=eip"], "LBF_EIP_ALLOCATION_ID"),
    ],
)
def test_a_stage_the_controller_would_refuse_is_never_written(
    project: Path, sets: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = configure_args(project)
    for item in sets:
        args += ["--set", item]
    before = (project / ".chalice" / "config.json").read_text()
    assert configure.main(args, NoAws()) == 2
    err = capsys.readouterr().err
    assert "--set" in err
    assert named in err
    assert (project / ".chalice" / "config.json").read_text() == before


def test_a_bad_value_kept_from_the_stage_is_named_as_the_stages(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = json.loads((project / ".chalice" / "config.json").read_text())
    config["stages"]["prod"]["environment_variables"]["LBF_RISE"] = "0"
    (project / ".chalice" / "config.json").write_text(json.dumps(config))
    assert configure.main(configure_args(project), NoAws()) == 2
    err = capsys.readouterr().err
    assert "stage prod of .chalice/config.json" in err
    assert "LBF_RISE" in err


def test_a_private_lb_address_given_by_set_puts_the_prober_in_the_vpc(
    aws: LocalAws, project: Path
) -> None:
    """The address has one source: --set LBF_LB_ADDRESS=private counts as --lb-address private,
    so the controllers never hand private LBs to a prober left outside the VPC."""
    args = [a for a in configure_args(project) if a != "--subnets" and "subnet-" not in a]
    args = [a for a in args if a != "--security-group" and not a.startswith("sg-")]
    public_pool = [*args, "--pool-address", "public", "--set", "LBF_LB_ADDRESS=private"]
    assert configure.main(public_pool, NoAws()) == 2  # the VPC's subnets are needed
    assert configure.main([*configure_args(project), *public_pool[len(args) :]], session()) == 0
    written = stage(project)
    assert written["environment_variables"]["LBF_LB_ADDRESS"] == "private"
    assert written["environment_variables"]["LBF_POOL_ADDRESS"] == "public"
    assert written["lambda_functions"]["probe_private"]["subnet_ids"]

    from chalicelib.config import Settings
    from chalicelib.core.model import AddressKind

    settings = Settings.from_env(written["environment_variables"])
    assert settings.lb_address is AddressKind.PRIVATE


@pytest.mark.parametrize(
    ("option", "variable"),
    [("--lb-address", "LBF_LB_ADDRESS"), ("--pool-address", "LBF_POOL_ADDRESS")],
)
def test_an_address_given_twice_two_ways_is_refused_naming_both(
    project: Path, option: str, variable: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = configure_args(project, option, "public", "--set", f"{variable}=private")
    assert configure.main(args, NoAws()) == 2
    err = capsys.readouterr().err
    assert option in err
    assert f"--set {variable}" in err
    # The same answer twice is no contradiction.
    same = configure_args(project, option, "private", "--set", f"{variable}=PRIVATE")
    assert configure.check(configure.parse(same)[0]).variables.get(variable) is None


def test_missing_credentials_are_one_line_not_a_traceback(
    project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import subprocess

    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    # An operator's checkout after `make setup`: configure.py checks it runs on that interpreter.
    (project / ".venv").symlink_to(Path(sys.prefix))
    for script, args in (
        ("configure", configure_args(project)),
        ("teardown", ["--stage", "prod", "--region", "eu-west-1", "--yes"]),
    ):
        done = subprocess.run(
            [
                str(project / ".venv" / "bin" / "python"),
                str(ROOT / "infra" / f"{script}.py"),
                *args,
                "--project",
                str(project),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith(f"{script}: no AWS credentials found"), line


# --- ownership, and the way back -----------------------------------------------------------


def owned_domain(aws: LocalAws, domain: str, txt: list[str]) -> None:
    """The controller's records under `domain`: lb and lb1, and the `_lbf` TXT with `txt`."""
    changes = [
        {
            "Action": "CREATE",
            "ResourceRecordSet": {
                "Name": name,
                "Type": kind,
                "TTL": 60,
                "ResourceRecords": [{"Value": v} for v in values],
            },
        }
        for name, kind, values in (
            (f"lb.{domain}", "A", ["192.0.2.10"]),
            (f"lb1.{domain}", "A", ["192.0.2.10"]),
            (f"_lbf.{domain}", "TXT", txt),
        )
    ]
    aws.client("route53").change_resource_record_sets(
        HostedZoneId=aws.zone_id, ChangeBatch={"Changes": changes}
    )


def names_under(aws: LocalAws, domain: str) -> set[str]:
    return {
        r["Name"].rstrip(".")
        for r in aws.client("route53").list_resource_record_sets(HostedZoneId=aws.zone_id)[
            "ResourceRecordSets"
        ]
        if r["Name"].rstrip(".").endswith(domain)
    }


def teardown_args(stage: str, cluster: str, domain: str, aws: LocalAws, project: Path) -> list[str]:
    return [
        *("--stage", stage, "--region", "us-east-1", "--cluster", cluster),
        *("--domain", domain, "--zone-id", aws.zone_id, "--yes", "--project", str(project)),
    ]


def test_teardown_refuses_a_domain_another_cluster_owns(
    aws: LocalAws, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    domain = "taken.edge.tools.example.com"
    owned_domain(aws, domain, ['"cluster=shop"', '"lb"', '"lb1"'])
    aws.client("cloudformation").create_stack(
        StackName="lb-failover-mistake", TemplateBody=json.dumps(STAND_IN_STAGE)
    )
    calls = session()
    recorder = Recorder(calls)
    args = teardown_args("mistake", "web", domain, aws, project)
    assert teardown.main(args, calls, sleep=lambda _s: None, say=lambda _m: None) == 2
    err = capsys.readouterr().err
    assert "'shop'" in err
    assert "nothing changed" in err
    # Nothing stopped, nothing deleted: the refusal comes before the schedule is touched.
    assert "events.DisableRule" not in recorder.calls
    assert "cloudformation.DeleteStack" not in recorder.calls
    assert names_under(aws, domain) == {f"lb.{domain}", f"lb1.{domain}", f"_lbf.{domain}"}
    stacks = {s["StackName"] for s in aws.client("cloudformation").describe_stacks()["Stacks"]}
    assert "lb-failover-mistake" in stacks


@pytest.mark.parametrize(
    "txt",
    [['"cluster=mine"', '"lb"', '"lb1"'], ['"lb"', '"lb1"']],
    ids=["owned-by-this-cluster", "written-before-the-owner-string"],
)
def test_teardown_removes_what_its_cluster_owns(
    aws: LocalAws, project: Path, txt: list[str]
) -> None:
    domain = f"mine{len(txt)}.edge.tools.example.com"
    owned_domain(aws, domain, txt)
    args = teardown_args("mine", "mine", domain, aws, project)
    assert teardown.main(args, session(), sleep=lambda _s: None, say=lambda _m: None) == 0
    assert names_under(aws, domain) == set()


def test_teardown_removes_both_records_of_a_failover_pair(aws: LocalAws, project: Path) -> None:
    """LBF_DNS_FAILOVER=route53 leaves two records at the active name, told apart by their
    SetIdentifier: both go."""
    domain = "pair.edge.tools.example.com"
    owned_domain(aws, domain, ['"cluster=pair"', '"lb"', '"lb1"'])
    route53 = aws.client("route53")
    plain = {
        "Name": f"lb.{domain}",
        "Type": "A",
        "TTL": 60,
        "ResourceRecords": [{"Value": "192.0.2.10"}],
    }
    pair = [
        {**plain, "SetIdentifier": role.lower(), "Failover": role}
        for role in ("PRIMARY", "SECONDARY")
    ]
    for action, record in [("DELETE", plain), *(("CREATE", r) for r in pair)]:
        route53.change_resource_record_sets(
            HostedZoneId=aws.zone_id,
            ChangeBatch={"Changes": [{"Action": action, "ResourceRecordSet": record}]},
        )
    args = teardown_args("pair", "pair", domain, aws, project)

    assert teardown.main(args, session(), sleep=lambda _s: None, say=lambda _m: None) == 0

    assert names_under(aws, domain) == set()


def create_network(aws: LocalAws, name: str, cidr: str) -> dict[str, str]:
    """network.yaml as a stack in a VPC of its own; its outputs."""
    vpc = aws.client("ec2").create_vpc(CidrBlock=f"{cidr}.0.0/16")["Vpc"]["VpcId"]
    cloudformation = aws.client("cloudformation")
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=(ROOT / "infra" / "cloudformation" / "network.yaml").read_text(),
        Parameters=[
            {"ParameterKey": "VpcId", "ParameterValue": vpc},
            {"ParameterKey": "VpcCidr", "ParameterValue": f"{cidr}.0.0/16"},
            {"ParameterKey": "PrivateSubnetCidrA", "ParameterValue": f"{cidr}.1.0/24"},
            {"ParameterKey": "PrivateSubnetCidrB", "ParameterValue": f"{cidr}.2.0/24"},
        ],
    )
    (found,) = cloudformation.describe_stacks(StackName=name)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in found["Outputs"]}


def test_rolling_back_the_stage_file_and_to_the_nat_design(
    aws: LocalAws, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The way back, with the tools' own commands against moto's server: the stage written
    before comes back with `configure.py --rollback`, and the prober network goes only once no
    instance uses its security groups (named, instead of a stack stuck in DELETE_FAILED)."""
    chalice = project / ".chalice"
    probers = create_network(aws, "lbf-probers", "10.50")
    first = configure_args(project, "--set", "LBF_TTL=45")
    first[first.index("--subnets") + 1] = probers["ProberSubnetIds"]
    first[first.index("--security-group") + 1] = probers["ProberSecurityGroupId"]
    assert configure.main(first, session()) == 0
    written = {p.name: p.read_text() for p in chalice.glob("*.json")}
    assert configure.main([*first, "--set", "LBF_TTL=30", "--set", "LBF_RISE=3"], session()) == 0
    assert stage(project)["environment_variables"]["LBF_TTL"] == "30"

    assert configure.main(["--rollback", "--project", str(project)], session()) == 0
    assert {p.name: p.read_text() for p in chalice.glob("*.json")} == written
    assert "LBF_RISE" not in stage(project)["environment_variables"]
    # A second rollback is the way forward again.
    assert configure.main(["--rollback", "--project", str(project)], session()) == 0
    assert stage(project)["environment_variables"]["LBF_RISE"] == "3"

    # Back to the NAT design: the LBs were moved into lbf-probers' groups on the way up, and one
    # still is; its stack cannot go yet, and the message says which instance holds which group.
    ec2 = aws.client("ec2")
    lb = ec2.run_instances(
        ImageId="ami-12c6146b",
        MinCount=1,
        MaxCount=1,
        SubnetId=probers["ProberSubnetIds"].split(",")[0],
        SecurityGroupIds=[probers["LoadBalancerSecurityGroupId"]],
    )["Instances"][0]["InstanceId"]
    args = ["--network-only", "lbf-probers", "--region", "us-east-1", "--yes"]
    capsys.readouterr()
    assert teardown.main(args, session(), sleep=lambda _s: None, say=lambda _m: None) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert lb in err
    assert probers["LoadBalancerSecurityGroupId"] in err
    stacks = {s["StackName"] for s in aws.client("cloudformation").describe_stacks()["Stacks"]}
    assert "lbf-probers" in stacks

    subnet = probers["ProberSubnetIds"].split(",")[0]
    vpc = ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["VpcId"]
    old = ec2.create_security_group(
        GroupName="lbf-network-lb", Description="the NAT design's", VpcId=vpc
    )
    ec2.modify_instance_attribute(InstanceId=lb, Groups=[old["GroupId"]])
    assert teardown.main(args, session(), sleep=lambda _s: None, say=lambda _m: None) == 0
    stacks = {s["StackName"] for s in aws.client("cloudformation").describe_stacks()["Stacks"]}
    assert "lbf-probers" not in stacks


def test_rollback_with_nothing_to_restore_says_so(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert configure.main(["--rollback", "--project", str(project)], NoAws()) == 2
    assert "nothing to restore" in capsys.readouterr().err


def test_a_misspelt_variable_is_refused_naming_the_known_one(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The controller refuses an LBF_ name outside its table; configure asks it, so the stage
    with the typo is never written."""
    before = (project / ".chalice" / "config.json").read_text()
    assert configure.main(configure_args(project, "--set", "LBF_DRYRUN=true"), NoAws()) == 2
    err = capsys.readouterr().err
    assert "LBF_DRYRUN" in err
    assert "LBF_DRY_RUN" in err
    assert (project / ".chalice" / "config.json").read_text() == before


# --- the cluster-name rule -----------------------------------------------------------------


@pytest.mark.parametrize("cluster", ["web.eu", "web_eu", "a" * 33])
def test_a_new_cluster_whose_name_breaks_an_aws_name_is_refused(
    aws: LocalAws, project: Path, cluster: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """No stage of config.json runs it and no stack lbf-<cluster> exists: a new cluster. A "."
    or "_" cannot be in a stack name, so no AWS call is needed to know it is new."""
    args = configure_args(project)
    args[args.index("--cluster") + 1] = cluster
    asked = NoAws() if not cluster.startswith("a") else session()
    assert configure.main(args, asked) == 2
    err = capsys.readouterr().err
    assert "--cluster" in err
    assert "1-32 of A-Z a-z 0-9 -" in err


def test_an_existing_cluster_keeps_its_name_with_a_warning(
    aws: LocalAws, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dotted cluster that a stage already runs: written again, with a warning; no notice
    topic can be named after it, so the stage names none (the controller would refuse the ARN)."""
    config = json.loads((project / ".chalice" / "config.json").read_text())
    env = config["stages"]["prod"]["environment_variables"]
    env["LBF_CLUSTER"] = "web.eu"
    del env["LBF_SNS_TOPIC_ARN"]
    (project / ".chalice" / "config.json").write_text(json.dumps(config))
    args = configure_args(project)
    args[args.index("--cluster") + 1] = "web.eu"
    assert configure.main(args, session()) == 0
    assert "warning: cluster 'web.eu' is an existing cluster's name" in capsys.readouterr().err
    written = stage(project)["environment_variables"]
    assert written["LBF_CLUSTER"] == "web.eu"
    assert "LBF_SNS_TOPIC_ARN" not in written
    assert "sns:Publish" not in (project / ".chalice" / "policy-prod.json").read_text()


def test_a_long_name_is_existing_when_its_cluster_stack_exists(
    aws: LocalAws, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = "c" * 40  # a name an earlier release's cluster stack took
    aws.client("cloudformation").create_stack(
        StackName=f"lbf-{cluster}", TemplateBody=json.dumps(STAND_IN_STAGE)
    )
    args = configure_args(project)
    args[args.index("--cluster") + 1] = cluster
    assert configure.main(args, session()) == 0
    assert "existing cluster's name" in capsys.readouterr().err
    assert stage(project)["environment_variables"]["LBF_CLUSTER"] == cluster
