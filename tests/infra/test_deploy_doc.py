"""infra/DEPLOY.md, followed end to end against the local stand-in.

Every ```sh block of the file, in order, runs as one POSIX `sh -e` script (the file says "one
shell") in a copy of the checkout, against moto's server (standin/aws.py). The project's own
commands run for real: infra/configure.py, infra/teardown.py, infra/render_document.py,
`chalice package`, the deploy-stack tests. External commands are shims that log each call:
- `aws` runs the call in moto where moto can (STS, Route 53 zones, the document, cluster and
  network stacks, their outputs, VPCs and subnets, parameters, buckets) and lists the rest with
  why not (NOT_RUN below): the test fails on an `aws` call nobody classified, so a command added
  to the file is either run or explained;
- `make`, `dig` and `curl` are listed as not run (a set-up virtualenv, real DNS, a real LB).

Two stand-ins inside moto, because moto cannot do what AWS does there: the Powertools layer's
public parameter (moto refuses names under /aws/) is placed in moto's SSM directly, and the stage
stack (`chalice package` output needs the SAM transform, which moto's CloudFormation lacks) is
replaced by a stack with the same outputs. Both are named in the log.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from standin.aws import LocalAws, local_aws

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "infra" / "DEPLOY.md"
REGION = "eu-west-1"  # the region DEPLOY.md's step 0 sets

# `aws` calls the stand-in cannot make, by "service operation", with the reason.
NOT_RUN = {
    "ec2 describe-images": (
        "looks up the pinned AMI by name among Amazon's and Canonical's public images, which "
        "moto's catalogue does not carry"
    ),
    "ec2 run-instances": (
        "needs the pinned AMI, which moto's catalogue does not carry; "
        "the instances' side is tested by tests/e2e with real HAProxy and tests/infra/test_user_data.py"
    ),
    "cloudformation package": "uploads the code for the SAM stack, which moto cannot create",
    "cloudformation deploy lb-failover-*": (
        "the packaged stage needs the SAM transform; a stack with the same outputs stands in"
    ),
    "logs tail": "follows a deployed function's log",
    "lambda get-account-settings": "an account's real concurrency limits",
    "ec2 create-tags": "tags the operator's Elastic IP ($ALLOCATION_ID), which this run has none of",
}
OTHER_NOT_RUN = {
    "make": "sets up the virtualenv the suite already runs in",
    "dig": "asks real DNS for the active record",
    "curl": "requests a page through a real LB",
}

SHIM = r'''#!{python}
"""`aws`, against moto where it can: see tests/infra/test_deploy_doc.py."""
import json, os, sys, time
import boto3, jmespath

argv = sys.argv[1:]
LOG = os.environ["DEPLOYDOC_LOG"]


def log(kind, ran, why=""):
    with open(LOG, "a") as f:
        f.write(json.dumps({{"command": kind, "argv": argv, "ran": ran, "why": why}}) + "\n")


def options(args):
    found, key = {{}}, None
    for arg in args:
        if arg.startswith("--"):
            key = arg[2:]
            found[key] = []
        elif key is not None:
            found[key].append(arg)
    return found


def text(value):
    if value is None:
        return "None"
    if isinstance(value, list):
        return "\t".join(text(v) for v in value)
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def answer(result, opts):
    query = opts.get("query", [None])[0]
    if query:
        result = jmespath.search(query, result)
    if opts.get("output", [""])[0] == "text":
        print(text(result))
    else:
        print(json.dumps(result, default=str))


def filters(values):
    out = []
    for value in values:
        name, _, rest = value.partition(",")
        out.append({{"Name": name.split("=", 1)[1], "Values": rest.split("=", 1)[1].split(",")}})
    return out


service, operation = argv[0], argv[1] if len(argv) > 1 else ""
opts = options(argv[2:])
one = lambda key: opts[key][0]
client = lambda name: boto3.client(name, region_name=os.environ["AWS_DEFAULT_REGION"])
kind = f"{{service}} {{operation}}"

if kind == "sts get-caller-identity":
    answer(client("sts").get_caller_identity(), opts)
elif kind == "route53 create-hosted-zone":
    answer(client("route53").create_hosted_zone(Name=one("name"), CallerReference=one("caller-reference")), opts)
elif kind == "route53 list-hosted-zones-by-name":
    answer(client("route53").list_hosted_zones_by_name(DNSName=one("dns-name"), MaxItems=one("max-items")), opts)
elif kind == "cloudformation deploy" and one("stack-name").startswith("lb-failover-"):
    stack = one("stack-name")
    body = {{
        "Resources": {{"StandIn": {{"Type": "AWS::CloudFormation::WaitConditionHandle"}}}},
        "Outputs": {{
            name: {{"Value": f"{{stack}}-{{name[:-len('FunctionName')]}}-StandIn"}}
            for name in ("ReconcileFunctionName", "OnInstanceChangeFunctionName", "ProbePrivateFunctionName")
        }},
    }}
    client("cloudformation").create_stack(StackName=stack, TemplateBody=json.dumps(body))
    log("cloudformation deploy lb-failover-*", False, "stand-in stack with the same outputs")
    sys.exit(0)
elif kind == "cloudformation deploy":
    path = one("template-file")
    body = open(path).read()
    if path.endswith(".json"):
        template = json.loads(body)
        for resource in template["Resources"].values():
            content = resource.get("Properties", {{}}).get("Content")
            if isinstance(content, dict):  # moto takes an SSM document's Content only as text
                resource["Properties"]["Content"] = json.dumps(content)
        body = json.dumps(template)
    parameters = [
        {{"ParameterKey": k, "ParameterValue": v}}
        for k, _, v in (p.partition("=") for p in opts.get("parameter-overrides", []))
    ]
    cloudformation = client("cloudformation")
    cloudformation.create_stack(
        StackName=one("stack-name"), TemplateBody=body, Parameters=parameters,
        Capabilities=opts.get("capabilities", []),
    )
    cloudformation.get_waiter("stack_create_complete").wait(StackName=one("stack-name"))
elif kind == "cloudformation describe-stacks":
    answer(client("cloudformation").describe_stacks(StackName=one("stack-name")), opts)
elif kind == "ec2 describe-vpcs":
    kwargs = {{"Filters": filters(opts["filters"])}} if "filters" in opts else {{"VpcIds": opts["vpc-ids"]}}
    answer(client("ec2").describe_vpcs(**kwargs), opts)
elif kind == "ec2 describe-subnets":
    answer(client("ec2").describe_subnets(Filters=filters(opts["filters"])), opts)
elif kind == "ssm put-parameter":
    client("ssm").put_parameter(Name=one("name"), Type=one("type"), Value=one("value"), Overwrite="overwrite" in opts)
elif kind == "s3 mb":
    bucket = argv[2].removeprefix("s3://")
    client("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={{"LocationConstraint": os.environ["AWS_DEFAULT_REGION"]}})
elif kind == "s3 rb":
    client("s3").delete_bucket(Bucket=argv[2].removeprefix("s3://"))
elif kind in json.loads(os.environ["DEPLOYDOC_NOT_RUN"]):
    log(kind, False, json.loads(os.environ["DEPLOYDOC_NOT_RUN"])[kind])
    sys.exit(0)
else:
    log(kind, False, "UNCLASSIFIED")
    sys.exit(3)
log(kind, True)
'''

OTHER = """#!/bin/sh
printf '%s\\n' "{{\\"command\\": \\"{name}\\", \\"argv\\": [], \\"ran\\": false, \\"why\\": \\"{why}\\"}}" >> "$DEPLOYDOC_LOG"
"""


def shell_script() -> str:
    blocks = re.findall(r"```sh\n(.*?)```", DEPLOY.read_text(encoding="utf-8"), re.S)
    assert blocks, "infra/DEPLOY.md lost its shell blocks"
    return "\n".join(blocks)


def test_the_shell_is_posix() -> None:
    """`sh`, not bash: shellcheck in POSIX mode, and no GNU-only sed, no bash word splitting."""
    script = "#!/bin/sh\n" + shell_script()
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (make system installs it)")
    done = subprocess.run(
        ["shellcheck", "-s", "sh", "-"], input=script, text=True, capture_output=True, check=False
    )
    assert done.returncode == 0, done.stdout
    for bashism in ("sed -i", "set -- $", "read -a", "mapfile", "readarray", "[[", "${!"):
        assert bashism not in script, bashism


def put_public_layer_parameter(aws: LocalAws, arn: str, version: str) -> None:
    """moto refuses every name under /aws/: place AWS's public parameter in its store."""
    from moto.ssm.models import ssm_backends

    name = f"/aws/service/powertools/python/arm64/python3.{sys.version_info.minor}/{version}"
    account = aws.client("sts").get_caller_identity()["Account"]
    backend = ssm_backends[account][REGION]
    regional = boto3.client("ssm", endpoint_url=aws.endpoint, region_name=REGION)
    regional.put_parameter(Name="/lbf-doc-test/layer", Value=arn, Type="String")
    versions = backend._parameters.pop("/lbf-doc-test/layer")
    versions[-1].name = name
    backend._parameters[name] = versions


def project_copy(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    shutil.copytree(
        ROOT,
        project,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "__pycache__", ".*_cache", "*.pyc", ".chalice/deployments"
        ),
    )
    (project / ".venv").symlink_to(Path(sys.prefix))  # the virtualenv this suite runs in
    return project


def shims(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    aws = bin_dir / "aws"
    aws.write_text(SHIM.format(python=sys.executable), encoding="utf-8")
    aws.chmod(0o755)
    for name, why in OTHER_NOT_RUN.items():
        path = bin_dir / name
        path.write_text(OTHER.format(name=name, why=why), encoding="utf-8")
        path.chmod(0o755)
    # A script, not a link: Python finds its virtualenv from the path it was started by.
    python = bin_dir / "python3"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n', encoding="utf-8")
    python.chmod(0o755)
    return bin_dir


def test_deploy_md_followed_end_to_end(tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    bin_dir = shims(tmp_path)
    log = tmp_path / "calls.jsonl"
    version = next(
        line.split("==")[1].strip()
        for line in (ROOT / "requirements-dev.txt").read_text().splitlines()
        if line.startswith("aws-lambda-powertools")
    )
    layer = (
        f"arn:aws:lambda:{REGION}:017000801446:layer:AWSLambdaPowertoolsPythonV3-"
        f"python3{sys.version_info.minor}-arm64:27"
    )
    with local_aws("standin.deploy-doc.invalid") as aws:
        put_public_layer_parameter(aws, layer, version)
        env = {
            **aws.environment(),
            "PATH": f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "DEPLOYDOC_LOG": str(log),
            "DEPLOYDOC_NOT_RUN": json.dumps(NOT_RUN),
        }
        done = subprocess.run(
            ["sh", "-e", "-c", shell_script()],
            cwd=project,
            env=env,
            # The two confirmations teardown.py asks for: the old network, then the cluster.
            input="lbf-network\nshop\n",
            text=True,
            capture_output=True,
            timeout=600,
            check=False,
        )
        calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
        assert not [c for c in calls if c["why"] == "UNCLASSIFIED"]

        # What the file's commands left behind in the stand-in and in the checkout.
        config = json.loads((project / ".chalice" / "config.json").read_text())
        prod = config["stages"]["prod"]
        zones = aws.client("route53").list_hosted_zones_by_name(DNSName="example.com")
        zone = next(z for z in zones["HostedZones"] if z["Name"] == "example.com.")
        assert prod["environment_variables"]["LBF_HOSTED_ZONE_ID"] == zone["Id"].split("/")[-1]
        assert prod["layers"] == [layer]
        # configure ran again during the upgrade: the prober sits in the new network's subnets.
        cloudformation = boto3.client(
            "cloudformation", endpoint_url=aws.endpoint, region_name=REGION
        )
        stacks = {s["StackName"] for s in cloudformation.describe_stacks()["Stacks"]}
        assert "lbf-probers" in stacks
        assert "lbf-network" not in stacks  # removed last, by teardown.py --network-only
        assert "lbf-shop" not in stacks  # the second cluster, removed with its stage
        assert "lbf-web" in stacks
        assert (project / "build" / "prod" / "sam.yaml").exists()
        assert config["stages"]["shop"]["environment_variables"]["LBF_CLUSTER"] == "shop"

    not_run = {c["command"]: c["why"] for c in calls if not c["ran"]}
    expected = {
        **NOT_RUN,
        "cloudformation deploy lb-failover-*": "stand-in stack with the same outputs",
        **OTHER_NOT_RUN,
    }
    assert not_run == expected
    ran = {c["command"] for c in calls if c["ran"]}
    assert {
        "sts get-caller-identity",
        "route53 create-hosted-zone",
        "cloudformation deploy",
        "cloudformation describe-stacks",
        "ec2 describe-subnets",
        "ssm put-parameter",
        "s3 mb",
        "s3 rb",
    } <= ran
    # The project's own commands ran for real: their output is in the script's.
    for said in ("wrote .chalice/config.json", "passed", "done"):
        assert said in done.stdout, said


def test_every_step_of_the_upgrade_comes_in_its_checked_order() -> None:
    """New network up, stage configured on it, old network removed last by the tool that
    refuses while a function still runs there."""
    text = DEPLOY.read_text(encoding="utf-8")
    section = text[text.index("### From the NAT gateway design") : text.index("## Rolling back")]
    order = [
        section.index("--stack-name lbf-probers"),
        section.index("python3 infra/configure.py"),
        section.index("step 7"),
        section.index("infra/teardown.py --network-only lbf-network"),
    ]
    assert order == sorted(order)
