"""Renders what runs on a load balancer from the files in infra/lb/, so they never drift apart.

    python infra/render_document.py > infra/ssm/LbFailover-UpdateBackends.json
    python infra/render_document.py update-config > infra/ssm/LbFailover-UpdateConfig.json
    python infra/render_document.py user-data > user-data.sh    # EC2 user data of an LB
    python infra/render_document.py user-data --gzip > user-data.gz   # the same, as launched

`document()` and `update_config_document()` are also what the CloudFormation template embeds.
Importing this module (by path is fine) puts the project's root on sys.path, so that the push's
time limit comes from the controller's own definition; it needs nothing beyond the standard
library and the controller's pure core.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from chalicelib.core.pushes import STEP_TIMEOUT_SECONDS  # noqa: E402

LB_DIR = Path(__file__).resolve().parent / "lb"
APPLY_SCRIPT = LB_DIR / "apply-backends.sh"
HAPROXY_CONFIG = LB_DIR / "haproxy.cfg"
READ_PARAMETER = LB_DIR / "read-parameter.py"
USER_DATA = LB_DIR / "user-data.sh"
UPDATE_CONFIG_SCRIPT = LB_DIR / "update-config.sh"
# HAProxy's master, workers, reload and start, shared by both scripts: each sources it from its
# own directory (how tests run them from infra/lb/), and every rendering puts its text in place.
HAPROXY_CONTROL = LB_DIR / "haproxy-control.sh"
INCLUDE_LINE = f'. "$(dirname "${{BASH_SOURCE[0]}}")/{HAPROXY_CONTROL.name}"'
INCLUDE_DIRECTIVE = f"# shellcheck source=infra/lb/{HAPROXY_CONTROL.name}"

DOCUMENT_NAME = "LbFailover-UpdateBackends"
UPDATE_CONFIG_DOCUMENT_NAME = "LbFailover-UpdateConfig"

# The same bounds as apply-backends.sh: Parameter Store holds at most 8 KB (advanced tier).
MAX_CHARS = 8192
MAX_ENTRIES = 1000
CHECKSUM_CHARS = 64

# The patterns are one character class with a length bound each: checking one takes time linear in
# the value, whatever the engine. SSM validates parameters service-side with a regex engine it does
# not document; a backtracking engine with a bounded stack (Java's recurses once per repetition of
# a group) can fail on a nested pattern such as `ENTRY(?: ENTRY){0,999}` for lists of a few
# hundred entries, and the whole push would be refused. A single character class repeated needs no
# group. So the pattern only keeps shell syntax out (what the old-agent fallback below relies
# on); the structure (address:port entries, octets, ports, single spaces, no duplicates) is
# checked by apply-backends.sh, which rejects a bad list before it changes anything.
# `$` is not the end in Java or Python: it also matches before a final newline, so the end is
# `(?![\s\S])`, "no character follows" (a lookahead at one position, no repetition). Whether SSM
# searches or matches the whole value, nothing else gets through.
_END = r"(?![\s\S])"
# Hex digits (IPv6 groups, and the decimal digits of IPv4 and ports), '.', ':', the brackets
# around an IPv6 address, and the space that joins entries.
BACKENDS_CHARACTERS = r"[0-9A-Fa-f.:\[\] ]"

BACKENDS_PATTERN = rf"^{BACKENDS_CHARACTERS}{{1,{MAX_CHARS}}}{_END}"
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
    return _script_lines(APPLY_SCRIPT, _FALLBACK)


def document() -> dict[str, Any]:
    """The SSM Command document LbFailover-UpdateBackends, as a JSON-ready dict."""
    return {
        "schemaVersion": "2.2",
        "description": (
            "lb-failover: apply a backend list to this load balancer's HAProxy. Validates the "
            "list and its checksum, compares it with what the running HAProxy serves, writes "
            "the backend section atomically (checked with haproxy -c), changes the pool through "
            "HAProxy's Runtime API (a graceful reload only when its server slots run out), and "
            "restores the last good list (exiting non-zero) if any step fails."
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
                "inputs": {
                    "runCommand": run_command(),
                    # Where aws:runShellScript reads its limit (a step-level timeoutSeconds is
                    # ignored, and the default is an hour). The controller counts a push still
                    # running after this long as stuck and sends it again: one number, defined
                    # with that rule in chalicelib/core/pushes.py.
                    "timeoutSeconds": STEP_TIMEOUT_SECONDS,
                },
            }
        ],
    }


def document_json() -> str:
    """The document exactly as committed in infra/ssm/."""
    return json.dumps(document(), indent=2) + "\n"


# The configuration travels base64-encoded: whatever haproxy.cfg holds, the value is letters,
# digits, '+', '/' and '=', inert between double quotes (the old-agent fallback below), with a
# length bound and no group (linear to check, as the Backends pattern). 16 KB of base64 is a
# 12 KB file; update-config.sh checks the same bound, and infra/update_config.py refuses a bigger
# file before sending anything.
CONFIG_MAX_CHARS = 16384
CONFIG_PATTERN = rf"^[A-Za-z0-9+/=]{{1,{CONFIG_MAX_CHARS}}}{_END}"

_UPDATE_CONFIG_FALLBACK = [
    "# SSM Agent < 3.3.2746.0 sets no SSM_* variables: take the parameters, which the",
    "# document's allowedPatterns keep free of shell syntax, from the command text instead.",
    'if [ -z "${SSM_Config+x}" ]; then export SSM_Config="{{Config}}"; fi',
    'if [ -z "${SSM_Checksum+x}" ]; then export SSM_Checksum="{{Checksum}}"; fi',
]


def script_text(path: Path) -> list[str]:
    """A script of infra/lb/ as an LB runs it: haproxy-control.sh in place of the line that
    sources it, so that the one file SSM or user data installs needs no other."""
    lines = path.read_text().splitlines()
    if INCLUDE_LINE not in lines:
        return lines
    if lines.count(INCLUDE_LINE) != 1:
        raise ValueError(f"{path} sources {HAPROXY_CONTROL.name} more than once")
    at = lines.index(INCLUDE_LINE)
    if lines[at - 1] != INCLUDE_DIRECTIVE:
        raise ValueError(f"{path}: the line before the include must be {INCLUDE_DIRECTIVE!r}")
    directive, *library = HAPROXY_CONTROL.read_text().splitlines()
    if not directive.startswith("# shellcheck shell=bash"):
        raise ValueError(f"{HAPROXY_CONTROL} must start with '# shellcheck shell=bash'")
    return [*lines[: at - 1], *library, *lines[at + 1 :]]


def _script_lines(path: Path, fallback: list[str]) -> list[str]:
    lines = script_text(path)
    shebang, body = lines[0], lines[1:]
    if not shebang.startswith("#!"):
        raise ValueError(f"{path} must start with a shebang: SSM runs it with sh otherwise")
    if any("{{" in line or "}}" in line for line in body):
        raise ValueError(f"{path} must not contain double braces: SSM substitutes them")
    return [shebang, *fallback, *body]


def update_config_document() -> dict[str, Any]:
    """The SSM Command document LbFailover-UpdateConfig, as a JSON-ready dict."""
    return {
        "schemaVersion": "2.2",
        "description": (
            "lb-failover: install a new haproxy.cfg on this load balancer. Checks it with "
            "haproxy -c together with the backend section, installs it, reloads gracefully, "
            "checks that the LB serves (a web server up, /health 200, requests through the "
            "frontend answered), and otherwise puts the previous file back and reloads or "
            "starts HAProxy with it (exiting non-zero). Sent by infra/update_config.py, one LB "
            "at a time."
        ),
        "parameters": {
            "Config": {
                "type": "String",
                "description": (
                    f"the new haproxy.cfg, base64-encoded; at most {CONFIG_MAX_CHARS} characters."
                ),
                "allowedPattern": CONFIG_PATTERN,
                "maxChars": CONFIG_MAX_CHARS,
                "interpolationType": "ENV_VAR",
            },
            "Checksum": {
                "type": "String",
                "description": "sha256 hex (64 lowercase characters) of the decoded file.",
                "allowedPattern": CHECKSUM_PATTERN,
                "maxChars": CHECKSUM_CHARS,
                "interpolationType": "ENV_VAR",
            },
        },
        "mainSteps": [
            {
                "action": "aws:runShellScript",
                "name": "updateConfig",
                "precondition": {"StringEquals": ["platformType", "Linux"]},
                "inputs": {
                    "runCommand": _script_lines(UPDATE_CONFIG_SCRIPT, _UPDATE_CONFIG_FALLBACK),
                    # A check, a reload and a rollback take seconds; never SSM's default hour.
                    "timeoutSeconds": 300,
                },
            }
        ],
    }


def update_config_json() -> str:
    """The document exactly as committed in infra/ssm/."""
    return json.dumps(update_config_document(), indent=2) + "\n"


# EC2 takes at most 16 KB of user data (before base64). cloud-init, which runs user data on both
# images DEPLOY.md names, unpacks gzip-compressed user data itself, so the limit is on the
# compressed form: the plain text passed it only just once read-parameter.py was embedded.
USER_DATA_LIMIT = 16384


def _without_comments(path: Path) -> list[str]:
    """The file's lines less comment-only and blank lines, to fit the user-data limit.

    Safe for these files: none has a heredoc, and their only multi-line strings are the Python
    programs of the shell scripts, in which such a line is a Python comment or blank line
    (tests/e2e/test_lb_side.py applies a list with the result, tests/infra/test_user_data.py runs
    the embedded read-parameter.py).
    """
    lines = script_text(path)
    kept = [lines[0]] if lines[0].startswith("#!") else []
    kept.append(f"# lb-failover infra/lb/{path.name}, comments stripped to fit in user data")
    start = len(kept) - 1
    kept += [line for line in lines[start:] if line.strip() and not line.lstrip().startswith("#")]
    return kept


def _embedded(path: Path, destination: str, mode: str) -> list[str]:
    marker = f"LBSIDE_EOF_{path.name.replace('-', '_').replace('.', '_').upper()}"
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
    """user-data.sh with the files it installs embedded, ready to be EC2 user data."""
    # The boot script loses its comments too (it has no heredoc either): with the three files it
    # embeds it has to fit EC2's limit. Read the commented original in infra/lb/.
    shebang, *body = _without_comments(USER_DATA)
    files = [
        "# Embedded by infra/render_document.py: the files user-data.sh installs.",
        "export LBSIDE_FILES_DIR=/opt/lb-failover",
        *_embedded(HAPROXY_CONFIG, "/opt/lb-failover/haproxy.cfg", "0644"),
        *_embedded(APPLY_SCRIPT, "/opt/lb-failover/apply-backends.sh", "0755"),
        *_embedded(READ_PARAMETER, "/opt/lb-failover/read-parameter.py", "0755"),
    ]
    rendered = "\n".join([shebang, *files, *body]) + "\n"
    size = len(compressed(rendered))
    if size > USER_DATA_LIMIT:
        raise ValueError(f"user data is {size} bytes gzip-compressed, over EC2's {USER_DATA_LIMIT}")
    return rendered


def compressed(text: str) -> bytes:
    """The user data as launched: gzip, byte for byte the same on every run (no timestamp)."""
    return gzip.compress(text.encode(), compresslevel=9, mtime=0)


def main(argv: list[str]) -> int:
    if argv == []:
        sys.stdout.write(document_json())
    elif argv == ["update-config"]:
        sys.stdout.write(update_config_json())
    elif argv == ["user-data"]:
        sys.stdout.write(user_data())
    elif argv == ["user-data", "--gzip"]:
        sys.stdout.buffer.write(compressed(user_data()))
    else:
        sys.stderr.write(
            "usage: python infra/render_document.py [update-config | user-data [--gzip]]\n"
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
