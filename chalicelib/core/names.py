"""The forms a name must take, and how an untrusted one is shown: each defined here, once.

A DNS label is checked for LBF_ACTIVE_NAME and LBF_DOMAIN (config, and infra/configure.py's
--domain) and for lbf:name tags (the inventory); an instance id where one arrives from outside (an
EventBridge event, a prober function's answer, a health check's CallerReference); a record's name
is built from a label the same way for records, for `status` and for the tools. Pure.
"""

from __future__ import annotations

import re

# The lbf:cluster tag's value (LBF_CLUSTER).
CLUSTER = re.compile(r"[A-Za-z0-9._-]{1,128}")
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


def push_log_group(cluster: str) -> str:
    """The CloudWatch Logs group the LBs' SSM Agent writes pushes' output to: a naming convention
    rather than a setting (infra/cloudformation/cluster.yaml creates the group under this name)."""
    return f"/lbf/{cluster}/pushes"


def show(value: str, limit: int = 40) -> str:
    """A hostile value made safe to log or print: escaped, quoted, shortened."""
    shortened = value if len(value) <= limit else value[:limit] + "..."
    return ascii(shortened)
