"""`make setup` and the lock files: what an operator's machine and the tests get installed.

`make setup` is the one set-up command infra/DEPLOY.md asks of an operator, on Debian or macOS:
it makes the virtualenv from requirements-dev.lock and nothing else. The lock pins every
package with its hashes; it must cover requirements-dev.txt, and the virtualenv the tests run
in must be the one it describes, or `make setup` elsewhere installs something else.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
_PIN = re.compile(r"^([A-Za-z0-9._-]+)==(\S+)")


def requirements(path: Path) -> list[Requirement]:
    """The requirement lines of a pip requirements file (not its options or comments)."""
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            found.append(Requirement(line))
    return found


def pins(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a lock file pip-compile wrote with --generate-hashes."""
    found: dict[str, tuple[str, list[str]]] = {}
    name = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        pin = _PIN.match(line)
        if pin:
            name = canonicalize_name(pin[1])
            found[name] = (pin[2], [])
        for digest in re.findall(r"--hash=(sha256:[0-9a-f]{64})", line):
            found[name][1].append(digest)
    return found


def dry_run(target: str) -> str:
    """The commands `make` would run for a target on a fresh machine (-B: nothing is made)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    done = subprocess.run(
        ["make", "--dry-run", "--always-make", "--no-print-directory", target],
        cwd=ROOT,
        text=True,
        capture_output=True,
        check=True,
    )
    return done.stdout


@pytest.mark.parametrize(
    ("source", "lock"),
    [
        ("requirements-dev.txt", "requirements-dev.lock"),
        ("requirements-awscli.txt", "requirements-awscli.lock"),
    ],
)
def test_the_lock_covers_every_requirement_with_hashes(source: str, lock: str) -> None:
    locked = pins(ROOT / lock)
    assert locked, f"{lock} pins nothing"
    for requirement in requirements(ROOT / source):
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{lock} lacks {requirement.name}: run `make lock`"
        version, _ = locked[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{lock} pins {requirement.name}=={version}, {source} asks {requirement}: "
            "run `make lock`"
        )
    unhashed = sorted(name for name, (_, hashes) in locked.items() if not hashes)
    assert not unhashed, f"pinned without a hash in {lock}: {unhashed}"


def test_the_tests_run_on_exactly_the_locked_versions() -> None:
    """What `make setup` installs elsewhere is what this suite passed on."""
    different = {}
    for name, (version, _) in pins(ROOT / "requirements-dev.lock").items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "not installed"
        if installed != version:
            different[name] = f"locked {version}, installed {installed}"
    assert not different, different


def test_setup_makes_the_virtualenv_from_the_lock_and_installs_no_system_package() -> None:
    """An operator on macOS runs `make setup` too: no apt-get, no sudo, nothing but the venv."""
    commands = dry_run("setup")
    assert "pip install --quiet --require-hashes -r requirements-dev.lock" in commands
    for system in ("apt-get", "sudo", "systemctl", "brew"):
        assert system not in commands, commands


@pytest.mark.parametrize("target", ["test", "demo", "check"])
def test_the_targets_that_need_debian_packages_still_install_them(target: str) -> None:
    """On a fresh Debian machine `make test` and `make demo` still set up everything they use."""
    commands = dry_run(target)
    assert "pip install --quiet --require-hashes -r requirements-dev.lock" in commands
    assert "apt-get install -y -qq haproxy shellcheck" in commands
    if target != "demo":
        assert "--require-hashes -r requirements-awscli.lock" in commands
