"""infra/DEPLOY.md, followed end to end against the local stand-in.

Every ```sh block of the file, in order, runs as one script under `dash -eu` (the file says "one
POSIX shell", and every variable it uses must be set by it) in a copy of the checkout, against
moto's server (standin/aws.py), with the real AWS CLI v1 (`make awscli`: its own virtualenv,
pinned in requirements-awscli.lock) pointed at moto through AWS_ENDPOINT_URL, and with a `python3`
on the PATH that has no boto3, as on an operator's machine: the project's tools must run with the
project's interpreter, as the file says. Its own commands run for real: infra/configure.py,
infra/teardown.py, infra/render_document.py, infra/update_config.py, `chalice package`, the
deploy-stack tests.

The `aws` on the PATH is a thin wrapper around the real one. It logs each call and passes it on,
except the calls in NOT_RUN, which it logs with why they cannot run here: the test fails on any
other call that fails, and on any NOT_RUN entry the file stopped making. `make`, `dig` and `curl`
are listed as not run (a set-up virtualenv, real DNS, a real LB).

Where moto cannot be AWS, the stand-in says so, named in the log or here:
- the packaged stage needs the SAM transform, which moto's CloudFormation lacks: the wrapper
  deploys a stack with the same outputs and the functions' log groups in its place;
- moto refuses to create parameters under /aws/: Canonical's Ubuntu AMI parameter and the
  Powertools layer's are placed in moto's store directly (moto serves Amazon Linux's itself);
- moto's CloudFormation takes an SSM document's Content only as text, where AWS also takes the
  object ssm-document.json has, and a stack made by `cloudformation deploy` (a change set) has no
  outputs there: both patched to AWS's behaviour in moto's classes (the server runs in this
  process);
- a template deployed through a bucket (`--s3-bucket`, for the documents' template, over the
  51,200 bytes CloudFormation takes inline) has a TemplateURL on the stand-in's own address,
  `http://127.0.0.1:PORT/bucket/key`, which moto reads as bucket "127": patched to read the
  path, as moto already does for `localhost`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.cloudformation import responses as cloudformation_responses
from moto.cloudformation.models import CloudFormationBackend
from moto.ssm.models import Document, ssm_backends

from standin.aws import LocalAws, local_aws
from tests.kit.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "infra" / "DEPLOY.md"
AWS_CLI = ROOT / ".venv-awscli" / "bin" / "aws"
REGION = "eu-west-1"  # the region DEPLOY.md's step 0 sets
AL2023 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
UBUNTU = "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"
UBUNTU_AMI = "ami-0b0ea68c435eb488d"  # any id: the file launches its LBs on Amazon Linux

# `aws` calls the stand-in cannot make, by "service operation", with the reason.
NOT_RUN = {
    "cloudformation deploy lb-failover-*": (
        "the packaged stage needs the SAM transform, which moto lacks: "
        "a stack with the same outputs and log groups stands in"
    ),
    "lambda get-account-settings": (
        "an account's concurrency limits, which moto's server does not answer (404)"
    ),
}
OTHER_NOT_RUN = {
    "make": "sets up the virtualenv the suite already runs in",
    "dig": "asks real DNS for the active record",
    "curl": "requests a page through a real LB",
}

WRAPPER = r'''#!{python}
"""The real AWS CLI, logging each call; the calls in NOT_RUN are logged and replaced."""
import json, os, sys

argv = sys.argv[1:]
kind = " ".join(argv[:2])
stack = argv[argv.index("--stack-name") + 1] if "--stack-name" in argv else ""
if kind == "cloudformation deploy" and stack.startswith("lb-failover-"):
    kind = "cloudformation deploy lb-failover-*"
    argv = ["cloudformation", "deploy", "--stack-name", stack, "--template-file", {stand_in!r}]
why = json.loads(os.environ["DEPLOYDOC_NOT_RUN"]).get(kind, "")
with open(os.environ["DEPLOYDOC_LOG"], "a") as log:
    log.write(json.dumps({{"command": kind, "argv": sys.argv[1:], "ran": not why, "why": why}}) + "\n")
if why and argv == sys.argv[1:]:  # not run, and nothing stands in for it
    sys.exit(0)
os.execv({aws!r}, [{aws!r}, *argv])
'''

OTHER = """#!/bin/sh
printf '%s\\n' "{{\\"command\\": \\"{name}\\", \\"argv\\": [], \\"ran\\": false, \\"why\\": \\"{why}\\"}}" >> "$DEPLOYDOC_LOG"
"""


def shell_blocks() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", DEPLOY.read_text(encoding="utf-8"), re.S)
    assert blocks, "infra/DEPLOY.md lost its shell blocks"
    return blocks


def shell_script() -> str:
    return "\n".join(shell_blocks())


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


def test_every_variable_the_file_uses_it_sets() -> None:
    """An operator pastes the blocks into a fresh shell: nothing may come from elsewhere. (The
    end-to-end run below has `set -u` too; this also covers what a branch there skips.)"""
    script = shell_script()
    # Heredocs with a quoted marker are file content for an instance, not this shell's.
    script = re.sub(r"<<'(\w+)'\n.*?\n\1\n", "\n", script, flags=re.S)
    used = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", script))
    set_here = set(re.findall(r"(?:^|;)\s*([A-Za-z_][A-Za-z0-9_]*)=", script, re.M))
    set_here |= set(re.findall(r"\bfor ([A-Za-z_][A-Za-z0-9_]*) in\b", script))
    for names in re.findall(r"\bread -r ((?:[A-Za-z_][A-Za-z0-9_]* ?)+)", script):
        set_here |= set(names.split())
    assert not used - set_here, f"used, never set: {sorted(used - set_here)}"


def test_no_project_tool_runs_on_the_system_python() -> None:
    """The tools need boto3 and the virtualenv's Python (the layer is chosen for it)."""
    script = shell_script()
    assert "PY=.venv/bin/python" in script
    for line in script.splitlines():
        assert not re.search(r"(^|[\s(])python3?\s", line), line


def test_configure_refuses_a_python_other_than_the_virtualenvs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """chalice runs in .venv and packages for its Python: a layer chosen for another is wrong."""
    configure = load_script(ROOT / "infra" / "configure.py")
    (tmp_path / ".venv").mkdir()
    other = f"3.{sys.version_info.minor - 1}.9"
    (tmp_path / ".venv" / "pyvenv.cfg").write_text(f"home = /usr/bin\nversion = {other}\n")

    class NoAws:
        def client(self, name: str) -> Any:
            raise AssertionError(f"an AWS call ({name}) before the check")

    args = [
        *("--cluster", "web", "--domain", "edge.example.com", "--region", REGION),
        *("--subnets", "subnet-0a1b2c3d,subnet-0e1f2a3b", "--security-group", "sg-0a1b2c3d"),
    ]
    assert configure.main([*args, "--project", str(tmp_path)], NoAws()) == 2
    said = capsys.readouterr().err
    running = f"python3.{sys.version_info.minor}"
    assert f"this is {running}" in said
    assert f".venv is python{other.rsplit('.', 1)[0]}" in said
    assert not (tmp_path / ".chalice").exists()


@pytest.fixture
def ssm_documents_as_aws_takes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's CloudFormation takes an AWS::SSM::Document's Content only as text; AWS also takes
    the object that ssm-document.json holds. The server runs in this process."""
    original = Document.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create(cls: type, name: str, template: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        content = template["Properties"].get("Content")
        if isinstance(content, dict):
            template = {**template, "Properties": {**template["Properties"]}}
            template["Properties"]["Content"] = json.dumps(content)
        return original(cls, name, template, *args, **kwargs)

    monkeypatch.setattr(Document, "create_from_cloudformation_json", classmethod(create))


@pytest.fixture
def change_sets_with_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    """`aws cloudformation deploy` creates and executes a change set; moto executes it without
    reading the new template's Outputs, so every stack made that way has none (on AWS it has)."""
    original = CloudFormationBackend.execute_change_set

    def execute(backend: Any, change_set_name: str, stack_name: str | None = None) -> None:
        original(backend, change_set_name, stack_name)
        change_set = backend.change_sets.get(change_set_name) or next(
            c for c in backend.change_sets.values() if c.change_set_name == change_set_name
        )
        stack = backend.stacks[change_set.stack_id]
        stack._parse_template()
        stack.output_map = stack._create_output_map()

    monkeypatch.setattr(CloudFormationBackend, "execute_change_set", execute)


@pytest.fixture
def templates_from_the_stand_ins_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    """The AWS CLI uploads a template given with --s3-bucket and passes its URL on the endpoint
    it uses, here the stand-in's loopback address; moto takes the path for `localhost` only."""
    original = cloudformation_responses.get_stack_from_s3_url

    def read(template_url: str, account_id: str, partition: str) -> str:
        if template_url.startswith("http://127.0.0.1:"):
            template_url = template_url.replace("http://127.0.0.1:", "http://localhost:", 1)
        return original(template_url, account_id=account_id, partition=partition)

    monkeypatch.setattr(cloudformation_responses, "get_stack_from_s3_url", read)


def put_public_parameter(aws: LocalAws, name: str, value: str) -> None:
    """moto refuses every name under /aws/: place AWS's public parameter in its store."""
    account = aws.client("sts").get_caller_identity()["Account"]
    backend = ssm_backends[account][REGION]
    regional = boto3.client("ssm", endpoint_url=aws.endpoint, region_name=REGION)
    regional.put_parameter(Name="/lbf-doc-test/public", Value=value, Type="String")
    versions = backend._parameters.pop("/lbf-doc-test/public")
    versions[-1].name = name
    backend._parameters[name] = versions


def project_copy(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    shutil.copytree(
        ROOT,
        project,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            ".venv-*",
            "build",
            "__pycache__",
            ".*_cache",
            "*.pyc",
            ".chalice/deployments",
        ),
    )
    (project / ".venv").symlink_to(Path(sys.prefix))  # the virtualenv this suite runs in
    return project


def stand_in_template(tmp_path: Path) -> Path:
    """The stage stack's outputs, and the log groups its functions would write to."""
    names = {
        output: f"lb-failover-standin-{output.removesuffix('FunctionName')}"
        for output in (
            "ReconcileFunctionName",
            "OnInstanceChangeFunctionName",
            "ProbePrivateFunctionName",
        )
    }
    template = {
        "Resources": {
            f"{output}Logs": {
                "Type": "AWS::Logs::LogGroup",
                "Properties": {"LogGroupName": f"/aws/lambda/{name}"},
            }
            for output, name in names.items()
        },
        "Outputs": {output: {"Value": name} for output, name in names.items()},
    }
    path = tmp_path / "stage-stand-in.json"
    path.write_text(json.dumps(template), encoding="utf-8")
    return path


def tools(tmp_path: Path) -> Path:
    """The PATH's first directories: the wrapped `aws`, the not-run commands, and a `python3`
    without boto3, like Debian's /usr/bin/python3 or macOS's."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    aws = bin_dir / "aws"
    aws.write_text(
        WRAPPER.format(
            python=sys.executable, aws=str(AWS_CLI), stand_in=str(stand_in_template(tmp_path))
        ),
        encoding="utf-8",
    )
    aws.chmod(0o755)
    for name, why in OTHER_NOT_RUN.items():
        path = bin_dir / name
        path.write_text(OTHER.format(name=name, why=why), encoding="utf-8")
        path.chmod(0o755)
    system = tmp_path / "system-python"
    venv.create(system, with_pip=False)
    return bin_dir


def test_deploy_md_followed_end_to_end(
    tmp_path: Path,
    ssm_documents_as_aws_takes_them: None,
    change_sets_with_outputs: None,
    templates_from_the_stand_ins_bucket: None,
) -> None:
    if not AWS_CLI.exists():
        pytest.skip("AWS CLI v1 is not installed (make awscli installs it in .venv-awscli)")
    dash = shutil.which("dash")
    assert dash, "dash is not installed: the file is followed under dash"
    project = project_copy(tmp_path)
    bin_dir = tools(tmp_path)
    path = f"{bin_dir}:{tmp_path / 'system-python' / 'bin'}:/usr/bin:/bin"
    no_boto3 = subprocess.run(
        ["python3", "-c", "import boto3"], env={"PATH": path}, capture_output=True, check=False
    )
    assert no_boto3.returncode != 0, "the PATH's python3 must be one without boto3"
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
        put_public_parameter(
            aws,
            f"/aws/service/powertools/python/arm64/python3.{sys.version_info.minor}/{version}",
            layer,
        )
        put_public_parameter(aws, UBUNTU, UBUNTU_AMI)
        ssm = boto3.client("ssm", endpoint_url=aws.endpoint, region_name=REGION)
        al2023_ami = ssm.get_parameter(Name=AL2023)["Parameter"]["Value"]  # moto's own
        env = {
            **aws.environment(),
            "PATH": path,
            "HOME": str(tmp_path),
            "DEPLOYDOC_LOG": str(log),
            "DEPLOYDOC_NOT_RUN": json.dumps(NOT_RUN),
        }
        done = subprocess.run(
            [dash, "-eu", "-c", shell_script()],
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

        # The instances of step 5, on the image AWS's public parameter named.
        ec2 = boto3.client("ec2", endpoint_url=aws.endpoint, region_name=REGION)
        reservations = ec2.describe_instances(
            Filters=[{"Name": "tag:lbf:cluster", "Values": ["web"]}]
        )["Reservations"]
        launched = [i for r in reservations for i in r["Instances"]]
        roles = sorted(
            next(t["Value"] for t in i["Tags"] if t["Key"] == "lbf:role") for i in launched
        )
        assert roles == ["lb", "lb", "web", "web"]
        assert {i["ImageId"] for i in launched} == {al2023_ami}
        lbs = [i for i in launched if {"Key": "lbf:role", "Value": "lb"} in i["Tags"]]
        assert all(i["MetadataOptions"]["InstanceMetadataTags"] == "enabled" for i in lbs)
        # The Elastic IP the file allocates carries the tag of the cluster the shell names by
        # then (shop, the second cluster's section sets it).
        addresses = ec2.describe_addresses()["Addresses"]
        assert [a["Tags"] for a in addresses] == [[{"Key": "lbf:cluster", "Value": "shop"}]]

    not_run = {c["command"]: c["why"] for c in calls if not c["ran"]}
    assert not_run == {**NOT_RUN, **OTHER_NOT_RUN}
    ran = {c["command"] for c in calls if c["ran"]}
    assert {
        "sts get-caller-identity",
        "route53 create-hosted-zone",
        "cloudformation deploy",
        "cloudformation describe-stacks",
        "cloudformation package",
        "ec2 describe-subnets",
        "ec2 run-instances",
        "ec2 get-console-output",
        "ec2 allocate-address",
        "ec2 create-tags",
        "ssm get-parameter",
        "ssm put-parameter",
        "logs filter-log-events",
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
        section.index("infra/configure.py"),
        section.index("step 7"),
        section.index("infra/teardown.py --network-only lbf-network"),
    ]
    assert order == sorted(order)


def test_a_template_over_cloudformations_inline_limit_goes_through_a_bucket() -> None:
    """CloudFormation takes at most 51,200 bytes of template inline (the AWS CLI refuses more
    before sending): a larger one must be deployed with --s3-bucket, or the step fails."""
    deploys = re.findall(
        r"aws cloudformation deploy((?:[^\n]*\\\n)*[^\n]*)", shell_script(), flags=re.M
    )
    checked = []
    for command in deploys:
        template = re.search(r"--template-file (\S+)", command)
        assert template is not None, command
        path = ROOT / template[1]
        if not path.exists():  # built by an earlier step (build/$STAGE/packaged.yaml)
            continue
        checked.append(path.name)
        if path.stat().st_size > 51_200:
            assert "--s3-bucket" in command, f"{path.name} is over 51,200 bytes: {command}"
    assert "ssm-document.json" in checked
