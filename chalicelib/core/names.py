"""The forms a name must take, and how an untrusted one is shown: each defined here, once.

A DNS label is checked for LBF_ACTIVE_NAME and LBF_DOMAIN (config, and infra/configure.py's
--domain) and for lbf:name tags (the inventory); an instance id where one arrives from outside (an
EventBridge event, a prober function's answer, a health check's CallerReference); a record's name
is built from a label the same way for records, for `status` and for the tools. Pure.
"""

from __future__ import annotations

import re

# The lbf:cluster tag's value (LBF_CLUSTER) that a controller runs with: any that earlier releases
# accepted, so no existing cluster is stranded. A new cluster takes NEW_CLUSTER.
CLUSTER = re.compile(r"[A-Za-z0-9._-]{1,128}")
# A new cluster's name fits every AWS name built from it (cluster_names): CloudFormation's stack
# name and SNS's topic name take no "."; a stack name takes no "_"; the region-qualified instance
# profile (IAM: 64 characters) leaves 32 for the cluster beside the longest region name.
NEW_CLUSTER_MAX_CHARS = 32
NEW_CLUSTER = re.compile(rf"[A-Za-z0-9][A-Za-z0-9-]{{0,{NEW_CLUSTER_MAX_CHARS - 1}}}")
# CloudFormation's rule for a stack name.
STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")
# SNS's rule for a topic name (a standard topic).
TOPIC_NAME = re.compile(r"[A-Za-z0-9_-]{1,256}")
NEW_CLUSTER_FORM = (
    f"1-{NEW_CLUSTER_MAX_CHARS} of A-Z a-z 0-9 - (not starting with -), so that it fits the "
    "names AWS builds from it: the stack lbf-<cluster>, the topic lb-failover-<cluster>, the "
    "instance profile lb-failover-<cluster>-<region>-lb"
)
# RFC 1035's label, lower case (Route 53 stores names lower case): 1-63 characters.
DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# Route 53 returns ids as "/hostedzone/Z..."; the API takes the bare id. Real ids start with "Z";
# moto's do not, so only the character set is checked.
HOSTED_ZONE_PREFIX = "/hostedzone/"
HOSTED_ZONE_ID = re.compile(r"[A-Z0-9]{1,32}")
# EC2's form: "i-" and 8 (older instances) to 17 hexadecimal digits.
INSTANCE_ID = re.compile(r"i-[0-9a-f]{8,17}")


def is_label(value: str) -> bool:
    return DNS_LABEL.fullmatch(value) is not None


def is_instance_id(value: str) -> bool:
    return INSTANCE_ID.fullmatch(value) is not None


def record_name(label: str, domain: str) -> str:
    """The record `label` names under the domain: fully qualified, without the trailing dot."""
    return f"{label}.{domain}"


# A stage's name (infra/configure.py --stage): it names the stage stack lb-failover-<stage>, and
# through it the alarms (<stack>-not-running, the longest) and `chalice deploy`'s function names
# (lb-failover-<stage>-on_instance_change, 64 at most).
STAGE = re.compile(r"[A-Za-z0-9-]{1,32}")
STAGE_ALARMS = (
    "no-healthy-lb",
    "backend-push-failures",
    "run-errors",
    "not-running",
    "configuration-errors",
)


def stage_names(stage: str) -> dict[str, str]:
    """Every AWS name the project builds from a stage's name, by what it names."""
    stack = f"lb-failover-{stage}"
    return {
        "CloudFormation stack": stack,
        **{f"CloudWatch alarm {alarm}": f"{stack}-{alarm}" for alarm in STAGE_ALARMS},
        "Lambda function": f"{stack}-on_instance_change",
    }


def is_new_cluster_name(value: str) -> bool:
    return NEW_CLUSTER.fullmatch(value) is not None


def cluster_stack_name(cluster: str) -> str:
    """The cluster stack (infra/cloudformation/cluster.yaml)."""
    return f"lbf-{cluster}"


def notice_topic_name(cluster: str) -> str:
    """The notice topic cluster.yaml creates, named so LBF_SNS_TOPIC_ARN can be written first."""
    return f"lb-failover-{cluster}"


def instance_profile_name(cluster: str, region: str | None) -> str:
    """The LBs' instance profile. IAM names are account-wide: a new cluster's names hold the
    region (one cluster name in two regions); None: the name of clusters made before that."""
    return f"lb-failover-{cluster}-{region}-lb" if region else f"lb-failover-{cluster}-lb"


def cluster_names(cluster: str, region: str) -> dict[str, str]:
    """Every AWS name the project builds from a new cluster's name, by what it names."""
    return {
        "CloudFormation stack": cluster_stack_name(cluster),
        "SNS topic": notice_topic_name(cluster),
        "IAM instance profile": instance_profile_name(cluster, region),
        "SSM parameter": f"/lbf/{cluster}/backends",
        "CloudWatch Logs group": push_log_group(cluster),
        "EC2 tag value": cluster,
        "TXT string": f"cluster={cluster}",
    }


def push_log_group(cluster: str) -> str:
    """The CloudWatch Logs group the LBs' SSM Agent writes pushes' output to: a naming convention
    rather than a setting (infra/cloudformation/cluster.yaml creates the group under this name)."""
    return f"/lbf/{cluster}/pushes"


def show(value: str, limit: int = 40) -> str:
    """A hostile value made safe to log or print: escaped, quoted, shortened."""
    shortened = value if len(value) <= limit else value[:limit] + "..."
    return ascii(shortened)
