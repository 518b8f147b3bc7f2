"""The LB boot script (infra/lb/user-data.sh) on the two images infra/DEPLOY.md names, without them.

The script runs for real (bash, `install`, `sha256sum`), with every command it must not run here
replaced by a stand-in on PATH that records its argv and environment: the package manager (`dnf` on
Amazon Linux 2023, `apt-get` on Ubuntu 24.04), `systemctl`, `curl` (instance metadata), `haproxy`
(its version), `python3` (read-parameter.py) and the apply script. Nothing else is on PATH, so a
command the script runs that no image provides fails the test. The files it writes land under
LBSIDE_ROOT. The units' check lines then run with the real HAProxy (Debian's 2.6) on the files the
script wrote.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from tests.kit.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
LB_DIR = ROOT / "infra" / "lb"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
LIST = "10.0.1.21:80 10.0.1.22:8080"

# What the stand-in `haproxy -v` prints: the first line's format is HAProxy's own, the same on
# every distribution (the Debian line is this machine's; the others differ in version only).
NEW_ENOUGH = "HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/"
NEWER = "HAProxy version 2.8.5-1ubuntu3 2024/04/01 - https://haproxy.org/"
OLD_HAPROXY = "HAProxy version 2.4.22-f8e3218 2023/02/14 - https://haproxy.org/"

# The distributions' own check lines, which the drop-in must replace (facts, with their source):
# - Fedora-family haproxy.service (Fedora, RHEL 8/9 and rebuilds; Amazon Linux 2023 is built from
#   Fedora's packages): Environment="CONFIG=/etc/haproxy/haproxy.cfg" "PIDFILE=/run/haproxy.pid"
#   "CFGDIR=/etc/haproxy/conf.d", and the line below, as `systemctl status haproxy` prints it on
#   those systems (e.g. the unit quoted on RHEL 9 / Rocky setups in public guides).
# - Ubuntu's haproxy.service (Ubuntu's haproxy package): Environment="CONFIG=/etc/haproxy/
#   haproxy.cfg" "PIDFILE=/run/haproxy.pid" "EXTRAOPTS=-S /run/haproxy-master.sock" and the line
#   below, as `systemctl status haproxy` prints it on Ubuntu LBs in public guides.
# - Debian 12's unit (this machine's /lib/systemd/system/haproxy.service) has no ExecStartPre;
#   its ExecReload checks haproxy.cfg alone: "/usr/sbin/haproxy -Ws -f $CONFIG -c -q $EXTRAOPTS".
DISTRIBUTION_PRE_START_CHECKS = {
    "fedora-family": "/usr/sbin/haproxy -f $CONFIG -f $CFGDIR -c -q $OPTIONS",
    "ubuntu": "/usr/sbin/haproxy -Ws -f $CONFIG -c -q $EXTRAOPTS",
}
DISTRIBUTION_RELOAD_CHECKS = {"debian": "/usr/sbin/haproxy -Ws -f $CONFIG -c -q $EXTRAOPTS"}

# The real tools the script may use; everything else on PATH is a stand-in.
REAL_TOOLS = ("bash", "install", "sha256sum", "dirname", "cat", "sleep", "env", "mkdir")

RECORDER = """#!/bin/bash
{{ printf '%s' "${{0##*/}}"; if (($#)); then printf ' %q' "$@"; fi; printf '\\n'; }} >>"{log}"
"""


@dataclass
class Boot:
    returncode: int
    stdout: str
    stderr: str
    commands: list[str]
    root: Path
    files: Path

    @property
    def drop_in(self) -> Path:
        return self.root / "etc/systemd/system/haproxy.service.d/lb-failover.conf"


def _stand_in(path: Path, body: str, log: Path) -> None:
    path.write_text(RECORDER.format(log=log) + body)
    path.chmod(0o755)


def boot(
    tmp_path: Path,
    *,
    image: str,
    haproxy_version: str,
    preinstalled: bool = False,
    parameter: str | None = LIST,
    apt_lock_held: bool = False,
) -> Boot:
    """Runs user-data.sh as on a fresh LB of that image; returns what it did."""
    fake, tools, root, files = (tmp_path / d for d in ("bin", "tools", "root", "files"))
    for directory in (fake, tools, root, files):
        directory.mkdir()
    log = tmp_path / "commands.log"
    log.touch()
    for tool in REAL_TOOLS:
        found = shutil.which(tool)
        assert found is not None, tool
        (tools / tool).symlink_to(found)
    shutil.copy(LB_DIR / "haproxy.cfg", files / "haproxy.cfg")
    shutil.copy(LB_DIR / "read-parameter.py", files / "read-parameter.py")
    # The apply script is stood in too: what it does is tested in tests/e2e/test_lb_side.py.
    _stand_in(
        files / "apply-backends.sh",
        'printf "  SSM_Backends=%s SSM_Checksum=%s\\n" "$SSM_Backends" "$SSM_Checksum" >>"'
        f'{log}"\n',
        log,
    )

    haproxy = f"""if [[ $1 == -v ]]; then echo "{haproxy_version}"; echo "Status: long-term supported branch"; fi
"""
    install_haproxy = f'cat >"{fake}/haproxy" <<\'STANDIN\'\n{RECORDER.format(log=log)}{haproxy}STANDIN\n/bin/chmod 0755 "{fake}/haproxy"\n'
    if preinstalled:
        _stand_in(fake / "haproxy", haproxy, log)
    if image == "al2023":
        _stand_in(fake / "dnf", install_haproxy, log)
    else:
        # apt's own message and exit status when another process holds the lock.
        held = (
            'if [[ " $* " != *" -o DPkg::Lock::Timeout="[1-9]* ]]; then\n'
            "  echo 'E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process"
            " 1234 (unattended-upgr)' >&2\n  exit 100\nfi\n"
            if apt_lock_held
            else ""
        )
        _stand_in(
            fake / "apt-get",
            f'printf "  DEBIAN_FRONTEND=%s\\n" "${{DEBIAN_FRONTEND:-}}" >>"{log}"\n'
            + held
            + f'if [[ " $* " == *" install "* ]]; then\n{install_haproxy}fi\n',
            log,
        )
    _stand_in(fake / "systemctl", "", log)
    _stand_in(
        fake / "curl",
        'case "${*: -1}" in\n'
        "  */api/token) printf token-1 ;;\n"
        "  */meta-data/tags/instance/lbf:cluster) printf web ;;\n"
        "  *) exit 22 ;;\n"
        "esac\n",
        log,
    )
    if parameter is None:
        python = 'echo "read-parameter: HTTP 400 ParameterNotFound" >&2\nexit 3\n'
    else:
        python = f"printf '%s' {shlex.quote(parameter)}\n"
    _stand_in(fake / "python3", python, log)

    result = subprocess.run(
        ["bash", str(LB_DIR / "user-data.sh")],
        env={
            "PATH": f"{fake}:{tools}",
            "LBSIDE_ROOT": str(root),
            "LBSIDE_FILES_DIR": str(files),
            "HOME": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    commands = [
        line.replace(str(files), "FILES").replace(str(fake), "BIN")
        for line in log.read_text().splitlines()
    ]
    return Boot(result.returncode, result.stdout, result.stderr, commands, root, files)


# What follows the package manager on both images: the version check, the unit, the cluster's
# name from instance metadata, the list from Parameter Store, and the apply script with the list
# and its checksum.
AFTER_INSTALL = [
    "haproxy -v",
    "systemctl daemon-reload",
    "systemctl enable haproxy",
    "systemctl restart haproxy",
    "curl -fsS -m 5 -X PUT -H X-aws-ec2-metadata-token-ttl-seconds:\\ 300 "
    "http://169.254.169.254/latest/api/token",
    "curl -fsS -m 5 -H X-aws-ec2-metadata-token:\\ token-1 "
    "http://169.254.169.254/latest/meta-data/tags/instance/lbf:cluster",
    "python3 FILES/read-parameter.py /lbf/web/backends",
    "lbf-apply-backends",
    f"  SSM_Backends={LIST} SSM_Checksum={hashlib.sha256(LIST.encode()).hexdigest()}",
]


def test_amazon_linux_2023_asks_dnf_for_haproxy_alone(tmp_path: Path) -> None:
    """Never `curl` (curl-minimal conflicts with it) nor the AWS CLI: haproxy is all it needs."""
    result = boot(tmp_path, image="al2023", haproxy_version=NEW_ENOUGH)
    assert result.returncode == 0, result.stderr
    assert result.commands == ["dnf install -y -q haproxy", *AFTER_INSTALL]


def test_ubuntu_2404_asks_apt_for_haproxy_alone(tmp_path: Path) -> None:
    """Ubuntu 24.04 has no `awscli` deb; the script never asks for one."""
    result = boot(tmp_path, image="ubuntu", haproxy_version=NEWER)
    assert result.returncode == 0, result.stderr
    assert result.commands == [
        "apt-get -o DPkg::Lock::Timeout=600 update -qq",
        "  DEBIAN_FRONTEND=",
        "apt-get -o DPkg::Lock::Timeout=600 install -y -qq haproxy",
        "  DEBIAN_FRONTEND=noninteractive",
        *AFTER_INSTALL,
    ]


def test_ubuntu_first_boot_waits_for_the_package_lock_instead_of_failing(tmp_path: Path) -> None:
    """apt-get fails at once on a held lock unless told to wait; the stand-in `apt-get` fails
    the same way when the script does not ask it to wait, as the real one does under Ubuntu's
    first-boot apt-daily and unattended-upgrades."""
    result = boot(tmp_path, image="ubuntu", haproxy_version=NEWER, apt_lock_held=True)
    assert result.returncode == 0, result.stderr
    assert "systemctl restart haproxy" in result.commands


def test_an_image_with_haproxy_installs_nothing(tmp_path: Path) -> None:
    result = boot(tmp_path, image="al2023", haproxy_version=NEW_ENOUGH, preinstalled=True)
    assert result.returncode == 0, result.stderr
    assert result.commands == AFTER_INSTALL


@pytest.mark.parametrize("image", ["al2023", "ubuntu"])
def test_haproxy_older_than_2_6_is_refused_before_anything_is_configured(
    tmp_path: Path, image: str
) -> None:
    result = boot(tmp_path, image=image, haproxy_version=OLD_HAPROXY)
    assert result.returncode == 1
    assert "HAProxy 2.4 is installed, lb-failover needs 2.6 or later" in result.stderr
    assert "nothing was configured or started" in result.stderr
    assert not any(c.startswith(("systemctl", "python3", "apply")) for c in result.commands)
    assert not (result.root / "etc").exists()


def test_a_cluster_without_a_list_yet_boots_and_waits_for_the_controller(tmp_path: Path) -> None:
    result = boot(tmp_path, image="al2023", haproxy_version=NEW_ENOUGH, parameter=None)
    assert result.returncode == 0, result.stderr
    assert "/lbf/web/backends does not exist yet" in result.stdout
    assert not any(c.startswith("apply") for c in result.commands)
    assert "systemctl restart haproxy" in result.commands


# --- the units' check lines, run with the real HAProxy ---------------------------------------


def _exec_lines(drop_in: Path, key: str) -> list[str]:
    lines = [
        line.split("=", 1)[1]
        for line in drop_in.read_text().splitlines()
        if line.startswith(f"{key}=")
    ]
    return lines


def _files_loaded(command: str) -> list[str]:
    words = shlex.split(command)
    return [words[i + 1] for i, word in enumerate(words) if word == "-f"]


def test_the_drop_in_replaces_every_distribution_line_and_checks_what_it_starts(
    tmp_path: Path,
) -> None:
    result = boot(tmp_path, image="ubuntu", haproxy_version=NEWER)
    assert result.returncode == 0, result.stderr
    start_pre = _exec_lines(result.drop_in, "ExecStartPre")
    start = _exec_lines(result.drop_in, "ExecStart")
    reload = _exec_lines(result.drop_in, "ExecReload")
    # An empty assignment first resets the distribution's list (systemd.service(5)); the check
    # is replaced, not deleted: it runs before every start.
    assert start_pre[0] == ""
    assert len(start_pre) == 2
    assert start[0] == ""
    assert len(start) == 2
    assert reload[0] == ""
    assert reload[2] == "/bin/kill -USR2 $MAINPID"
    # A master that exits because its worker failed is started again (HAProxy's documented
    # pairing for its exit-on-failure default), far enough apart to stay under the start limit.
    assert _exec_lines(result.drop_in, "Restart") == ["on-failure"]
    assert _exec_lines(result.drop_in, "RestartSec") == ["3s"]
    both = ["/etc/haproxy/haproxy.cfg", "/etc/haproxy/backends.cfg"]
    assert _files_loaded(start[1]) == both
    assert _files_loaded(start_pre[1]) == both
    assert _files_loaded(reload[1]) == both
    assert " -c " in f" {start_pre[1]} "
    assert " -c " in f" {reload[1]} "
    # Each distribution's check would have looked at haproxy.cfg without the backend section.
    for line in [*DISTRIBUTION_PRE_START_CHECKS.values(), *DISTRIBUTION_RELOAD_CHECKS.values()]:
        assert "backends.cfg" not in line


def _run_check(
    command: str, root: Path, *, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    words = shlex.split(command)
    words[0] = HAPROXY
    words = [w.replace("/etc/haproxy/", f"{root}/etc/haproxy/") for w in words]
    return subprocess.run(words, capture_output=True, text=True, timeout=30, check=False, env=env)


@pytest.mark.parametrize("backends", ["as written at boot", "with servers", "with IPv6 servers"])
def test_the_pre_start_check_passes_on_the_files_the_unit_loads(
    tmp_path: Path, backends: str
) -> None:
    result = boot(tmp_path, image="al2023", haproxy_version=NEW_ENOUGH)
    assert result.returncode == 0, result.stderr
    backends_file = result.root / "etc/haproxy/backends.cfg"
    if backends == "with servers":
        backends_file.write_text(
            "# lbf-checksum 0\nbackend web\n    server 10.0.1.21:80 10.0.1.21:80\n"
            "    server 10.0.1.22:8080 10.0.1.22:8080\n"
        )
    elif backends == "with IPv6 servers":
        backends_file.write_text(
            "# lbf-checksum 0\nbackend web\n    server 2001:db8::1:80 [2001:db8::1]:80\n"
        )
    (check,) = [line for line in _exec_lines(result.drop_in, "ExecStartPre") if line]
    checked = _run_check(check, result.root)
    assert checked.returncode == 0, checked.stderr
    (start,) = [line for line in _exec_lines(result.drop_in, "ExecStart") if line]
    # ExecStart's own file list, checked the same way.
    files = " ".join(f"-f {f}" for f in _files_loaded(start))
    assert _run_check(f"haproxy -c -q {files}", result.root).returncode == 0


def test_the_pre_start_check_still_stops_a_broken_configuration(tmp_path: Path) -> None:
    result = boot(tmp_path, image="al2023", haproxy_version=NEW_ENOUGH)
    (result.root / "etc/haproxy/backends.cfg").write_text("backend web\n    server s1 nowhere\n")
    (check,) = [line for line in _exec_lines(result.drop_in, "ExecStartPre") if line]
    assert _run_check(check, result.root).returncode != 0


@pytest.mark.parametrize("distribution", sorted(DISTRIBUTION_PRE_START_CHECKS))
def test_haproxy_cfg_alone_passes_each_distributions_own_check(
    tmp_path: Path, distribution: str
) -> None:
    config = tmp_path / "haproxy.cfg"
    config.write_text((LB_DIR / "haproxy.cfg").read_text())
    (tmp_path / "conf.d").mkdir()
    environment = {
        "PATH": "/usr/sbin:/usr/bin:/bin",
        "CONFIG": str(config),
        "CFGDIR": str(tmp_path / "conf.d"),
        "OPTIONS": "",
        "EXTRAOPTS": "",
    }
    # systemd splits the line into words after substituting $VARIABLES (empty ones vanish).
    words = [
        environment[word[1:]] if word.startswith("$") else word
        for word in DISTRIBUTION_PRE_START_CHECKS[distribution].split()
    ]
    words = [HAPROXY, *[word for word in words[1:] if word]]
    checked = subprocess.run(
        words, capture_output=True, text=True, timeout=30, check=False, env=environment
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


# --- read-parameter.py ------------------------------------------------------------------------


def _load_reader() -> ModuleType:
    return load_script(LB_DIR / "read-parameter.py")


def test_read_parameter_signs_the_request_exactly_as_botocore_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from botocore import auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    reader = _load_reader()
    now = dt.datetime(2026, 11, 30, 3, 4, 5, tzinfo=dt.UTC)
    credentials = {"AccessKeyId": "AKIDEXAMPLE", "SecretAccessKey": "secret", "Token": "session"}
    url = "https://ssm.eu-west-1.amazonaws.com/"
    body = '{"Name": "/lbf/web/backends"}'
    ours = reader.signed_headers(url, "eu-west-1", body, "AmazonSSM.GetParameter", credentials, now)

    request = AWSRequest(
        method="POST",
        url=url,
        data=body.encode(),
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "AmazonSSM.GetParameter",
        },
    )
    monkeypatch.setattr(auth, "get_current_datetime", lambda: now.replace(tzinfo=None))
    auth.SigV4Auth(Credentials("AKIDEXAMPLE", "secret", "session"), "ssm", "eu-west-1").add_auth(
        request
    )
    assert ours["authorization"] == request.headers["Authorization"]
    assert ours["x-amz-date"] == request.headers["X-Amz-Date"]
    assert ours["x-amz-security-token"] == request.headers["X-Amz-Security-Token"]


def test_the_embedded_reader_is_the_file(tmp_path: Path) -> None:
    """render_document strips comment lines from what it embeds: the result still compiles and
    defines the same signer."""
    render = load_script(ROOT / "infra" / "render_document.py")
    user_data = render.user_data()
    start = user_data.index("<<'LBSIDE_EOF_READ_PARAMETER_PY'\n") + len(
        "<<'LBSIDE_EOF_READ_PARAMETER_PY'\n"
    )
    embedded = user_data[start : user_data.index("\nLBSIDE_EOF_READ_PARAMETER_PY\n")]
    path = tmp_path / "read-parameter.py"
    path.write_text(embedded + "\n")
    checked = subprocess.run(
        ["python3", "-c", f"import runpy; m = runpy.run_path({str(path)!r}); print(sorted(m))"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert checked.returncode == 0, checked.stderr
    assert "signed_headers" in checked.stdout
