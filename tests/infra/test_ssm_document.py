"""The SSM document LbFailover-UpdateBackends: its parameter patterns, and that it is the rendering.

SSM checks `allowedPattern` service-side with a regex engine it does not document; the patterns
keep to what Java and Python's `re` read alike, and every case is tried both ways SSM might apply
it: as a search and as a full match. The Backends pattern only keeps shell syntax out (one
character class, linear to check); lists that are well-formed characters but wrong in structure
are refused by apply-backends.sh itself, which these tests run on them.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.kit.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "infra" / "ssm" / "LbFailover-UpdateBackends.json"


def _load_renderer() -> ModuleType:
    return load_script(ROOT / "infra" / "render_document.py")


render = _load_renderer()
DOCUMENT: dict[str, Any] = render.document()
PARAMETERS: dict[str, Any] = DOCUMENT["parameters"]


def admitted(parameter: str, value: str) -> bool:
    """Whether SSM would accept the value, whichever way it applies the pattern."""
    pattern = re.compile(PARAMETERS[parameter]["allowedPattern"])
    searched = pattern.search(value) is not None
    matched = pattern.fullmatch(value) is not None
    assert searched == matched, f"search and full match disagree on {value!r}"
    return matched and len(value) <= PARAMETERS[parameter]["maxChars"]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _longest_list() -> str:
    """As many entries as fit in the 8 KB the controller may write to Parameter Store."""
    entries: list[str] = []
    for i in range(10_000):
        candidate = " ".join([*entries, f"10.0.{i // 250}.{i % 250}:8080"])
        if len(candidate) > 8192:
            break
        entries = candidate.split(" ")
    return " ".join(entries)


LONGEST = _longest_list()

GOOD_LISTS = [
    "10.0.1.23:8080",
    "10.0.1.23:80 10.0.1.24:80 10.0.2.5:8443",
    "0.0.0.0:1 255.255.255.255:65535",
    "[2001:db8::1]:80",
    "10.0.0.1:80 [2001:db8::1]:80 [::1]:65535",
    "[::ffff:10.0.0.1]:80",
    LONGEST,
]

# Refused by the pattern: anything with a character outside hex digits, '.', ':', brackets and
# the space, and anything longer than a parameter can hold.
HOSTILE_LISTS = {
    "semicolon": "10.0.0.1:80;reboot",
    "semicolon-spaced": "10.0.0.1:80 ; reboot",
    "command substitution": "$(id)",
    "command substitution in entry": "10.0.0.1:80 $(touch /tmp/pwned)",
    "backticks": "10.0.0.1:80 `id`",
    "newline": "10.0.0.1:80\n10.0.0.2:80",
    "trailing newline": "10.0.0.1:80\n",
    "double quote": '10.0.0.1:80" ; id ; "',
    "ten thousand entries": " ".join(
        f"10.{i // 62500}.{i // 250 % 250}.{i % 250}:80" for i in range(10_000)
    ),
    "one character too long": "1" * (render.MAX_CHARS + 1),
    "hostname": "web1.internal:80",
    "empty": "",
    "tab": "10.0.0.1:80\t10.0.0.2:80",
    "brace": "{{Checksum}}",
}

# Inert characters in the wrong structure: the pattern lets them through (it has no groups, so
# that checking it stays linear), and the apply script refuses them before changing anything.
MALFORMED_LISTS = {
    "IPv6 without brackets": "2001:db8::1:80",
    "IPv6 loopback without brackets": "::1:80",
    "port 0": "10.0.0.1:0",
    "port 70000": "10.0.0.1:70000",
    "port 65536": "10.0.0.1:65536",
    "port with leading zero": "10.0.0.1:080",
    "no port": "10.0.0.1",
    "octet 256": "10.0.0.256:80",
    "double space": "10.0.0.1:80  10.0.0.2:80",
    "leading space": " 10.0.0.1:80",
    "trailing space": "10.0.0.1:80 ",
    "listed twice": "10.0.0.1:80 10.0.0.1:80",
    "bad IPv6 group": "[2001:db8::12345]:80",
    "two double colons": "[2001::db8::1]:80",
    "brackets only": "[]:80",
}


@pytest.mark.parametrize("backends", GOOD_LISTS, ids=lambda value: value[:40])
def test_pattern_admits_backend_lists(backends: str) -> None:
    assert admitted("Backends", backends)
    assert admitted("Checksum", sha256(backends))


@pytest.mark.parametrize("backends", HOSTILE_LISTS.values(), ids=HOSTILE_LISTS.keys())
def test_pattern_rejects_hostile_lists(backends: str) -> None:
    assert not admitted("Backends", backends)


def test_backends_pattern_is_one_character_class_with_a_length_bound() -> None:
    """No group and no nested repetition: linear to check under any regex engine."""
    pattern = PARAMETERS["Backends"]["allowedPattern"]
    end = r"(?![\s\S])"
    assert pattern == rf"^[0-9A-Fa-f.:\[\] ]{{1,{render.MAX_CHARS}}}{end}"
    assert PARAMETERS["Backends"]["maxChars"] == render.MAX_CHARS


@pytest.mark.parametrize("backends", MALFORMED_LISTS.values(), ids=MALFORMED_LISTS.keys())
def test_apply_script_refuses_what_the_pattern_lets_through(backends: str, tmp_path: Path) -> None:
    assert admitted("Backends", backends)
    backends_file = tmp_path / "backends.cfg"
    result = subprocess.run(
        ["bash", str(ROOT / "infra" / "lb" / "apply-backends.sh")],
        env={
            "PATH": "/usr/bin:/bin",
            "SSM_Backends": backends,
            "SSM_Checksum": sha256(backends),
            "LBSIDE_HAPROXY_CONFIG": str(tmp_path / "haproxy.cfg"),
            "LBSIDE_BACKENDS_FILE": str(backends_file),
            # Never reached: the list is refused first.
            "LBSIDE_HAPROXY_BIN": "/bin/false",
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "rejected" in result.stderr
    assert "nothing changed" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_admitted_lists_hold_no_shell_syntax() -> None:
    # The old-agent fallback pastes the value between double quotes: only characters that are
    # inert there may pass, whatever the list looks like.
    inert = set("0123456789abcdefABCDEF.:[] ")
    probes = [
        *GOOD_LISTS,
        *HOSTILE_LISTS.values(),
        *MALFORMED_LISTS.values(),
        "[$(id)]:80",
        "[`id`]:80",
        '[";id;"]:80',
    ]
    for value in probes:
        if admitted("Backends", value):
            assert set(value) <= inert, value


@pytest.mark.parametrize(
    "checksum",
    [
        "",
        "0" * 63,
        "0" * 65,
        "A" * 64,  # uppercase: sha256sum prints lowercase
        "g" * 64,
        "0" * 64 + "\n",
        "0" * 32 + ";" + "0" * 31,
        "$(id)" + "0" * 59,
    ],
)
def test_pattern_rejects_bad_checksums(checksum: str) -> None:
    assert not admitted("Checksum", checksum)


def test_parameters_reach_the_script_as_environment_variables() -> None:
    assert set(PARAMETERS) == {"Backends", "Checksum"}
    for parameter in PARAMETERS.values():
        assert parameter["type"] == "String"
        assert parameter["interpolationType"] == "ENV_VAR"


def test_document_runs_the_apply_script() -> None:
    assert DOCUMENT["schemaVersion"] == "2.2"
    (step,) = DOCUMENT["mainSteps"]
    assert step["action"] == "aws:runShellScript"
    lines = step["inputs"]["runCommand"]
    script = render.script_text(ROOT / "infra" / "lb" / "apply-backends.sh")
    # SSM runs the commands as a file: the shebang must be the first line, or sh runs it.
    assert lines[0] == script[0] == "#!/usr/bin/env bash"
    assert lines[-len(script) + 1 :] == script[1:]
    assert_haproxy_control_inlined(lines)
    # Parameter references appear only in the fallback for old agents, inside double quotes.
    references = [line for line in lines if "{{" in line]
    assert references == [
        'if [ -z "${SSM_Backends+x}" ]; then export SSM_Backends="{{Backends}}"; fi',
        'if [ -z "${SSM_Checksum+x}" ]; then export SSM_Checksum="{{Checksum}}"; fi',
    ]


def assert_haproxy_control_inlined(lines: list[str]) -> None:
    """The one file the agent writes needs no other: haproxy-control.sh is in it, once, where
    the script sources it, and nothing sources it any more."""
    library = (ROOT / "infra" / "lb" / "haproxy-control.sh").read_text().splitlines()[1:]
    at = lines.index(library[0])
    assert lines[at : at + len(library)] == library
    assert lines.count(library[0]) == 1
    assert not [line for line in lines if 'haproxy-control.sh"' in line]
    assert sum(line.startswith(("reload() {", "master_pid() {")) for line in lines) == 2


def test_the_two_scripts_repeat_nothing_haproxy_control_defines() -> None:
    """A path default or the lock written twice drifts apart: a push and a configuration update
    that took different locks would reload HAProxy under each other."""
    library = (ROOT / "infra" / "lb" / "haproxy-control.sh").read_text().splitlines()
    variables = {line.split("=", 1)[0] for line in library if re.fullmatch(r"[a-z_]+=.*", line)}
    functions = {line for line in library if re.fullmatch(r"[a-z_]+\(\) \{.*", line)}
    assert {"config", "backends_file", "pidfile", "haproxy_bin", "socket"} <= variables
    assert "lock_haproxy() {" in functions
    for name in ("apply-backends.sh", "update-config.sh"):
        text = (ROOT / "infra" / "lb" / name).read_text()
        lines = text.splitlines()
        repeated = [line for line in lines if line.split("=", 1)[0] in variables]
        repeated += [line for line in lines if line in functions]
        assert repeated == [], f"{name} repeats what haproxy-control.sh defines"
        assert "flock" not in text, f"{name} takes a lock of its own"
        assert lines.count("lock_haproxy") == 1


def test_committed_document_is_the_rendering() -> None:
    assert COMMITTED.read_text() == render.document_json(), (
        "infra/ssm/LbFailover-UpdateBackends.json is stale: "
        "python infra/render_document.py > infra/ssm/LbFailover-UpdateBackends.json"
    )
    assert json.loads(COMMITTED.read_text()) == DOCUMENT


def test_document_is_within_ssm_limits() -> None:
    # SSM Command documents may be up to 64 KB.
    assert len(render.document_json().encode()) < 64 * 1024


def test_user_data_fits_ec2_limit() -> None:
    # EC2 counts the bytes it is given; they are gzip-compressed (cloud-init unpacks them), as
    # infra/DEPLOY.md launches them.
    user_data = render.user_data()
    assert user_data.startswith("#!/bin/bash\n")
    launched = render.compressed(user_data)
    assert len(launched) <= 16384
    assert gzip.decompress(launched).decode() == user_data


# --- LbFailover-UpdateConfig ---------------------------------------------------------------------

UPDATE_CONFIG = render.update_config_document()
CONFIG_PARAMETERS: dict[str, Any] = UPDATE_CONFIG["parameters"]


def config_admitted(value: str) -> bool:
    pattern = re.compile(CONFIG_PARAMETERS["Config"]["allowedPattern"])
    searched = pattern.search(value) is not None
    matched = pattern.fullmatch(value) is not None
    assert searched == matched, f"search and full match disagree on {value!r}"
    return matched and len(value) <= CONFIG_PARAMETERS["Config"]["maxChars"]


def test_committed_update_config_document_is_the_rendering() -> None:
    committed = ROOT / "infra" / "ssm" / "LbFailover-UpdateConfig.json"
    assert committed.read_text() == render.update_config_json(), (
        "infra/ssm/LbFailover-UpdateConfig.json is stale: "
        "python infra/render_document.py update-config > infra/ssm/LbFailover-UpdateConfig.json"
    )


def test_the_project_configuration_fits_and_passes_the_config_pattern() -> None:
    config = (ROOT / "infra" / "lb" / "haproxy.cfg").read_bytes()
    assert config_admitted(base64.b64encode(config).decode())


@pytest.mark.parametrize(
    "value",
    ["", "$(id)", "Z2xvYmFs\n", 'Z2xvYmFs"; id; "', "Z2xv YmFs", "{{Checksum}}", "A" * 16385],
    ids=["empty", "shell", "newline", "quote", "space", "brace", "too long"],
)
def test_the_config_pattern_admits_base64_only(value: str) -> None:
    assert not config_admitted(value)


def test_update_config_pattern_is_one_character_class_and_inert_in_double_quotes() -> None:
    pattern = CONFIG_PARAMETERS["Config"]["allowedPattern"]
    assert pattern == rf"^[A-Za-z0-9+/=]{{1,{render.CONFIG_MAX_CHARS}}}(?![\s\S])"
    assert (
        CONFIG_PARAMETERS["Checksum"]["allowedPattern"] == PARAMETERS["Checksum"]["allowedPattern"]
    )
    for parameter in CONFIG_PARAMETERS.values():
        assert parameter["interpolationType"] == "ENV_VAR"


def test_update_config_document_runs_the_script_with_a_short_timeout() -> None:
    (step,) = UPDATE_CONFIG["mainSteps"]
    assert step["action"] == "aws:runShellScript"
    assert step["inputs"]["timeoutSeconds"] == 300
    lines = step["inputs"]["runCommand"]
    script = render.script_text(ROOT / "infra" / "lb" / "update-config.sh")
    assert lines[0] == script[0] == "#!/usr/bin/env bash"
    assert lines[-len(script) + 1 :] == script[1:]
    assert_haproxy_control_inlined(lines)
    references = [line for line in lines if "{{" in line]
    assert references == [
        'if [ -z "${SSM_Config+x}" ]; then export SSM_Config="{{Config}}"; fi',
        'if [ -z "${SSM_Checksum+x}" ]; then export SSM_Checksum="{{Checksum}}"; fi',
    ]


# --- time limits, read as the SSM Agent reads them ---------------------------------------------

# amazon-ssm-agent's pluginutil: a limit outside 5..172800 s, or none, is the default hour.
AGENT_DEFAULT_SECONDS = 3600
AGENT_MIN_SECONDS = 5
AGENT_MAX_SECONDS = 172800


def agent_time_limit(step: dict[str, Any]) -> int:
    """The limit the agent applies to an aws:runShellScript step.

    The plugin decodes the step's `inputs` alone into its input (runCommand, workingDirectory,
    timeoutSeconds) and passes `timeoutSeconds` through pluginutil.ValidateExecutionTimeout: a
    string is read as a number, an integer as is, a float truncated, anything else (absent) is
    the default, and so is a value outside the plugin's bounds. A `timeoutSeconds` beside
    `inputs`, at the step's own level, never reaches the plugin.
    """
    assert step["action"] == "aws:runShellScript"
    value = step["inputs"].get("timeoutSeconds")
    seconds: int
    if isinstance(value, bool):
        seconds = 0
    elif isinstance(value, int):
        seconds = value
    elif isinstance(value, float):
        seconds = int(value)
    elif isinstance(value, str):
        try:
            seconds = int(float(value))
        except ValueError:
            seconds = 0
    else:
        seconds = 0
    if not AGENT_MIN_SECONDS <= seconds <= AGENT_MAX_SECONDS:
        return AGENT_DEFAULT_SECONDS
    return seconds


def _rendered_documents() -> dict[str, dict[str, Any]]:
    """Every place a document is shipped from: infra/ssm/ and the CloudFormation template."""
    documents = {
        f"infra/ssm/{path.name}": json.loads(path.read_text())
        for path in sorted((ROOT / "infra" / "ssm").glob("*.json"))
    }
    template = json.loads((ROOT / "infra" / "cloudformation" / "ssm-document.json").read_text())
    for resource in template["Resources"].values():
        content = resource["Properties"]["Content"]
        if isinstance(content, str):
            content = json.loads(content)
        documents[f"ssm-document.json {resource['Properties']['Name']}"] = content
    return documents


RENDERED = _rendered_documents()


def test_every_rendered_document_is_one_of_the_two() -> None:
    names = {name.rsplit(" ", 1)[-1].removesuffix(".json").rsplit("/", 1)[-1] for name in RENDERED}
    assert names == {render.DOCUMENT_NAME, render.UPDATE_CONFIG_DOCUMENT_NAME}
    assert len(RENDERED) == 4


@pytest.mark.parametrize("where", sorted(RENDERED))
def test_the_agent_stops_a_push_when_the_controller_sends_it_again(where: str) -> None:
    # A hung push must end on the LB when the controller counts it stuck and resends it;
    # otherwise the resend waits on the first one's lock and fails.
    from chalicelib.core import pushes

    (step,) = RENDERED[where]["mainSteps"]
    assert "timeoutSeconds" not in step, "the agent does not read a limit at the step's level"
    limit = agent_time_limit(step)
    if render.DOCUMENT_NAME in where:
        assert limit == pushes.STEP_TIMEOUT_SECONDS
    else:
        assert limit == 300
    assert limit < AGENT_DEFAULT_SECONDS / 10  # minutes, not the agent's default hour


def test_a_limit_at_the_step_level_is_the_agents_default_hour() -> None:
    # The reading above, checked on the shape the issue found.
    step = {"action": "aws:runShellScript", "timeoutSeconds": 180, "inputs": {"runCommand": []}}
    assert agent_time_limit(step) == AGENT_DEFAULT_SECONDS
    assert agent_time_limit({**step, "inputs": {"timeoutSeconds": "180"}}) == 180
    assert agent_time_limit({**step, "inputs": {"timeoutSeconds": 1}}) == AGENT_DEFAULT_SECONDS
