"""The cluster-name rule (core.names.NEW_CLUSTER) against the rule of every AWS name the project
builds from a cluster's name (core.names.cluster_names). AWS's rules are written out here from
AWS's documentation, not taken from names.py, so the two cannot agree by construction.

The stage's name (core.names.STAGE) builds the stage stack's name and, through it, the alarms'
and the functions' (core.names.stage_names): the same table holds them. Not built from either: DNS
names (records are named after the LBs' labels under LBF_DOMAIN) and health check
CallerReferences (a digest of the cluster).
"""

from __future__ import annotations

import re

import pytest

from chalicelib.config import Settings
from chalicelib.core.names import (
    NEW_CLUSTER_MAX_CHARS,
    STAGE,
    STAGE_ALARMS,
    cluster_names,
    instance_profile_name,
    is_new_cluster_name,
    stage_names,
)
from tests.kit.settings import REQUIRED_ENV

# (pattern, maximum length) of each AWS name, by what cluster_names calls it.
AWS_RULES = {
    # CloudFormation CreateStack: letters, digits and hyphens, starting with a letter; 128.
    "CloudFormation stack": (r"[A-Za-z][A-Za-z0-9-]*", 128),
    # SNS CreateTopic: letters, digits, hyphens and underscores; 256.
    "SNS topic": (r"[A-Za-z0-9_-]+", 256),
    # IAM: [\w+=,.@-]; role names 64 (the tighter of role and instance profile), account-wide.
    "IAM instance profile": (r"[\w+=,.@-]+", 64),
    # Parameter Store: a-z A-Z 0-9 _ . - /, 1011 for the whole name.
    "SSM parameter": (r"[A-Za-z0-9_./-]+", 1011),
    # CloudWatch Logs CreateLogGroup: [.\-_/#A-Za-z0-9]; 512.
    "CloudWatch Logs group": (r"[.\-_/#A-Za-z0-9]+", 512),
    # EC2 tags: a value of up to 256 characters.
    "EC2 tag value": (r"[\w .:/=+\-@]+", 256),
    # DNS: one character-string of a TXT record holds 255 octets.
    "TXT string": (r"[ -~]+", 255),
    # Lambda CreateFunction: letters, digits, hyphens, underscores; 64.
    "Lambda function": (r"[A-Za-z0-9_-]+", 64),
    # CloudWatch PutMetricAlarm: 1-255 characters.
    **{f"CloudWatch alarm {alarm}": (r"[^\x00-\x1f]+", 255) for alarm in STAGE_ALARMS},
}
# The longest region names today are 14 characters (ap-southeast-7, eusc-de-east-1); two more
# for regions still to come.
REGIONS = ("eu-west-1", "ap-southeast-7", "x" * 16)


def fits(kind: str, name: str) -> bool:
    pattern, longest = AWS_RULES[kind]
    return re.fullmatch(pattern, name) is not None and len(name) <= longest


def test_the_table_covers_every_name_built() -> None:
    assert set(cluster_names("web", "eu-west-1")) | set(stage_names("prod")) == set(AWS_RULES)


@pytest.mark.parametrize("stage", ["prod", "dev", "shop-eu", "p" * 32])
def test_a_stage_name_fits_every_aws_name_built_from_it(stage: str) -> None:
    assert STAGE.fullmatch(stage)
    for kind, name in stage_names(stage).items():
        assert fits(kind, name), (kind, name)


@pytest.mark.parametrize(
    ("stage", "breaks"),
    [("my_stage", {"CloudFormation stack"}), ("p" * 34, {"Lambda function"})],
)
def test_a_stage_name_the_rule_refuses_breaks_an_aws_name(stage: str, breaks: set[str]) -> None:
    assert not STAGE.fullmatch(stage)
    assert {kind for kind, name in stage_names(stage).items() if not fits(kind, name)} == breaks


def test_the_alarms_are_the_ones_the_stage_stack_makes() -> None:
    from pathlib import Path

    template = Path(__file__).resolve().parents[2] / "infra" / "cloudformation" / "merge"
    text = (template / "monitoring.yaml").read_text(encoding="utf-8")
    made = set(re.findall(r"AlarmName: !Sub \$\{AWS::StackName\}-([a-z-]+)", text))
    assert made == set(STAGE_ALARMS)


@pytest.mark.parametrize(
    "cluster",
    ["web", "w", "1web", "shop-eu-1", "Web-Prod", "a" * NEW_CLUSTER_MAX_CHARS],
)
@pytest.mark.parametrize("region", REGIONS)
def test_a_new_clusters_name_fits_every_aws_name_built_from_it(cluster: str, region: str) -> None:
    assert is_new_cluster_name(cluster)
    for kind, name in cluster_names(cluster, region).items():
        assert fits(kind, name), (kind, name)


@pytest.mark.parametrize(
    ("cluster", "breaks"),
    [
        ("web.eu", {"CloudFormation stack", "SNS topic"}),  # the issue's own case
        ("web_eu", {"CloudFormation stack"}),
        ("a" * (NEW_CLUSTER_MAX_CHARS + 1), {"IAM instance profile"}),
        (
            "web eu",
            {
                "CloudFormation stack",
                "SNS topic",
                "IAM instance profile",
                "SSM parameter",
                "CloudWatch Logs group",
            },
        ),
    ],
)
def test_a_name_the_rule_refuses_breaks_an_aws_name(cluster: str, breaks: set[str]) -> None:
    assert not is_new_cluster_name(cluster)
    broken = {
        kind for kind, name in cluster_names(cluster, "x" * 16).items() if not fits(kind, name)
    }
    assert broken == breaks


def test_a_leading_hyphen_is_refused_as_the_command_line_would_read_an_option() -> None:
    assert not is_new_cluster_name("-web")


def test_the_instance_profile_of_a_cluster_made_before_keeps_its_name() -> None:
    assert instance_profile_name("web", None) == "lb-failover-web-lb"
    assert instance_profile_name("web", "eu-west-1") == "lb-failover-web-eu-west-1-lb"


def test_an_existing_clusters_dotted_name_still_runs_with_a_warning() -> None:
    """A stricter rule never strands a running cluster: its instances carry the tag."""
    settings = Settings.from_env({**REQUIRED_ENV, "LBF_CLUSTER": "web.eu"})
    assert settings.cluster == "web.eu"
    assert settings.cluster_warning is not None
    assert "web.eu" in settings.cluster_warning
    assert "1-32" in settings.cluster_warning
    assert Settings.from_env({**REQUIRED_ENV, "LBF_CLUSTER": "web"}).cluster_warning is None
