"""Renders what runs on a load balancer from the files in infra/lb/, so they never drift apart.

    python infra/render_document.py > infra/ssm/LbFailover-UpdateBackends.json
    python infra/render_document.py user-data > user-data.sh    # EC2 user data of an LB

`document()` is also what the CloudFormation template embeds; importing this module (by path is
fine) has no side effect, and it needs nothing beyond the standard library.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

LB_DIR = Path(__file__).resolve().parent / "lb"
APPLY_SCRIPT = LB_DIR / "apply-backends.sh"
HAPROXY_CONFIG = LB_DIR / "haproxy.cfg"
USER_DATA = LB_DIR / "user-data.sh"

DOCUMENT_NAME = "LbFailover-UpdateBackends"

# The same bounds as apply-backends.sh: Parameter Store holds at most 8 KB (advanced tier).
MAX_CHARS = 8192
MAX_ENTRIES = 1000
CHECKSUM_CHARS = 64
# The step's own timeout (SSM's default is an hour): a push still running after it is reported and
# sent again by the controller, which counts the same number (chalicelib/core/pushes.py).
STEP_TIMEOUT_SECONDS = 180

# The patterns keep to what Java's regex (which SSM validates with) and Python's `re` (which the
# tests use) read alike: non-capturing groups, bounded repeats, a negative lookahead. `$` is not
# the end in either: it also matches before a final newline, so the end is `(?![\s\S])`, "no
# character follows". Whether SSM searches or matches the whole value, nothing else gets through.
_END = r"(?![\s\S])"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_PORT = r"(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
# The pattern keeps IPv6 to its characters and brackets; the script checks the groups.
_IPV6 = r"\[[0-9A-Fa-f:.]{2,45}\]"
_ENTRY = rf"(?:{_IPV4}|{_IPV6}):{_PORT}"

BACKENDS_PATTERN = rf"^{_ENTRY}(?: {_ENTRY}){{0,{MAX_ENTRIES - 1}}}{_END}"
CHECKSUM_PATTERN = rf"^[0-9a-f]{{{CHECKSUM_CHARS}}}{_END}"

# SSM Agent older than 3.3.2746.0 ignores `interpolationType` and sets no SSM_* variable; it
# only substitutes the parameter references in the command text. These lines give the script its
# inputs there too. That is safe only because the patterns above admit hex digits, '.', ':',
# '[', ']' and spaces, none of which does anything inside double quotes; the script validates
# the values again either way. (No double braces in comments: the agent would substitute them.)
_FALLBACK = [
    "# SSM Agent < 3.3.2746.0 sets no SSM_* variables: take the parameters, which the",
    "# document's allowedPatterns keep free of shell syntax, from the command text instead.",
    'if [ -z "${SSM_Backends+x}" ]; then export SSM_Backends="{{Backends}}"; fi',
    'if [ -z "${SSM_Checksum+x}" ]; then export SSM_Checksum="{{Checksum}}"; fi',
]


def run_command() -> list[str]:
    """apply-backends.sh as runCommand lines, with the fallback for old agents after its shebang."""
    lines = APPLY_SCRIPT.read_text().splitlines()
    shebang, body = lines[0], lines[1:]
    if not shebang.startswith("#!"):
        raise ValueError(f"{APPLY_SCRIPT} must start with a shebang: SSM runs it with sh otherwise")
    if any("{{" in line or "}}" in line for line in body):
        raise ValueError(f"{APPLY_SCRIPT} must not contain double braces: SSM substitutes them")
    return [shebang, *_FALLBACK, *body]


def document() -> dict[str, Any]:
    """The SSM Command document LbFailover-UpdateBackends, as a JSON-ready dict."""
    return {
        "schemaVersion": "2.2",
        "description": (
            "lb-failover: apply a backend list to this load balancer's HAProxy. Validates the "
            "list and its checksum, writes the backend section atomically, checks the whole "
            "configuration with haproxy -c, reloads gracefully, and restores the last good "
            "list (exiting non-zero) if any step fails."
        ),
        "parameters": {
            "Backends": {
                "type": "String",
                "description": (
                    "address:port entries (IPv6 as [address]:port), sorted, joined by single "
                    f"spaces; at most {MAX_ENTRIES} entries and {MAX_CHARS} characters."
                ),
                "allowedPattern": BACKENDS_PATTERN,
                "maxChars": MAX_CHARS,
                "interpolationType": "ENV_VAR",
            },
            "Checksum": {
                "type": "String",
                "description": "sha256 hex (64 lowercase characters) of exactly Backends.",
                "allowedPattern": CHECKSUM_PATTERN,
                "maxChars": CHECKSUM_CHARS,
                "interpolationType": "ENV_VAR",
            },
        },
        "mainSteps": [
            {
                "action": "aws:runShellScript",
                "name": "applyBackends",
                "precondition": {"StringEquals": ["platformType", "Linux"]},
                "timeoutSeconds": STEP_TIMEOUT_SECONDS,
                "inputs": {"runCommand": run_command()},
            }
        ],
    }


def document_json() -> str:
    """The document exactly as committed in infra/ssm/."""
    return json.dumps(document(), indent=2) + "\n"


# EC2 takes at most 16 KB of user data (before base64).
USER_DATA_LIMIT = 16384


def _without_comments(path: Path) -> list[str]:
    """The file's lines less comment-only and blank lines, to fit the user-data limit.

    Safe for these two files: neither has a heredoc or a multi-line string that a line starting
    with '#' could belong to (tests/e2e/test_lb_side.py applies a list with the result).
    """
    lines = path.read_text().splitlines()
    kept = [lines[0]] if lines[0].startswith("#!") else []
    kept.append(f"# lb-failover infra/lb/{path.name}, comments stripped to fit in user data")
    start = len(kept) - 1
    kept += [line for line in lines[start:] if line.strip() and not line.lstrip().startswith("#")]
    return kept


def _embedded(path: Path, destination: str, mode: str) -> list[str]:
    marker = f"LBF_EOF_{path.name.replace('-', '_').replace('.', '_').upper()}"
    content = _without_comments(path)
    if marker in content:
        raise ValueError(f"{path} contains its heredoc marker {marker}")
    return [
        f"install -d -m 0755 {Path(destination).parent}",
        f"cat >{destination} <<'{marker}'",
        *content,
        marker,
        f"chmod {mode} {destination}",
    ]


def user_data() -> str:
    """user-data.sh with haproxy.cfg and apply-backends.sh embedded, ready to be EC2 user data."""
    lines = USER_DATA.read_text().splitlines()
    shebang, body = lines[0], lines[1:]
    files = [
        "# Embedded by infra/render_document.py: the files user-data.sh installs.",
        "export LBF_FILES_DIR=/opt/lb-failover",
        *_embedded(HAPROXY_CONFIG, "/opt/lb-failover/haproxy.cfg", "0644"),
        *_embedded(APPLY_SCRIPT, "/opt/lb-failover/apply-backends.sh", "0755"),
    ]
    rendered = "\n".join([shebang, *files, *body]) + "\n"
    if len(rendered.encode()) > USER_DATA_LIMIT:
        raise ValueError(
            f"user data is {len(rendered.encode())} bytes, over EC2's {USER_DATA_LIMIT}"
        )
    return rendered


def main(argv: list[str]) -> int:
    if argv == []:
        sys.stdout.write(document_json())
    elif argv == ["user-data"]:
        sys.stdout.write(user_data())
    else:
        sys.stderr.write("usage: python infra/render_document.py [user-data]\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
