"""Cold start and size: what importing app.py costs a fresh process, and the deployment package.

Import time is `python -X importtime -c "import app"` in fresh processes, median of 10, read from
the `app` line's cumulative time (what the module and everything it pulls in cost, on top of the
interpreter's own start). It runs in the unzipped deployment package, laid out as Lambda's
/var/task: app.py, chalicelib and chalice's runtime from the zip, which holds no .pyc, so they
compile at every cold start as they do on Lambda (PYTHONDONTWRITEBYTECODE keeps it that way);
the libraries (Powertools, from its layer on Lambda) come precompiled, as pip installed them.
Three variants:

- tracing disabled (the dev stage, and the target);
- the same with nothing precompiled at all (PYTHONPYCACHEPREFIX pointing at an empty directory):
  an upper bound, for a layer that ships without bytecode;
- tracing enabled (the prod stage): Powertools' Tracer with the X-Ray SDK.

app.py makes no boto3 client at import: the first invocation does (`aws_services`), so that
cost is measured apart, in fresh processes too.

The package is `chalice package` of a copy of the project, offline (PIP_NO_INDEX and an empty
PIP_FIND_LINKS: requirements.txt is empty, so nothing needs downloading; if it did, the package
step would fail here and say so).
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.deployment import EXAMPLE_STAGES
from bench.report import REPO, Figure, Progress, Section, table
from bench.stats import median

RUNS = 10
IMPORT_TARGET_MS = 400
PACKAGE_TARGET_MB = 10
# What the Powertools layer carries in place of the package (infra/DEPLOY.md): not in the zip, but
# counted in Lambda's 250 MB unzipped limit for function plus layers.
LAYER_DISTRIBUTIONS = ("aws-lambda-powertools", "aws-xray-sdk", "wrapt", "jmespath")

_CLIENTS_SNIPPET = """
import time
started = time.perf_counter()
from chalicelib.adapters.clients import client
for service in ("ec2", "route53", "ssm", "sns"):
    client(service)
print(time.perf_counter() - started)
"""


@dataclass(frozen=True)
class ImportRun:
    total_ms: float
    children: dict[str, float]  # what `import app` imported directly -> cumulative ms


def parse_importtime(stderr: str, module: str = "app") -> ImportRun:
    """The cumulative time of `module` and of each module it imported directly.

    `-X importtime` prints one line per import after its children, indented two spaces a level:
    `import time: self [us] | cumulative | name`. The lines one level deeper that come after the
    previous top-level line are `module`'s direct imports.
    """
    pending: dict[str, float] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        fields = line.removeprefix("import time:").split("|")
        if len(fields) != 3 or not fields[1].strip().isdigit():
            continue  # the header line
        name_field = fields[2].rstrip()
        # One space follows the bar, then two more per level of nesting.
        level = (len(name_field) - len(name_field.lstrip(" ")) - 1) // 2
        name = name_field.strip()
        cumulative_ms = int(fields[1]) / 1000
        if level == 0:
            if name == module:
                return ImportRun(cumulative_ms, dict(pending))
            pending = {}
        elif level == 1:
            pending[name] = cumulative_ms
    raise ValueError(f"no import line for {module}")


def _import_runs(task: Path, env: dict[str, str], runs: int) -> list[ImportRun]:
    """Fresh imports of app.py in `task`, the unzipped package; the script's directory ('' for
    -c) comes first on sys.path, so the zip's chalice runtime shadows the installed one."""
    found = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import app"],
            cwd=task,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        found.append(parse_importtime(done.stderr))
    return found


def _client_seconds(env: dict[str, str], runs: int) -> list[float]:
    found = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", _CLIENTS_SNIPPET],
            cwd=REPO,
            env=env | {"AWS_DEFAULT_REGION": "us-east-1"},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        found.append(float(done.stdout.strip()))
    return found


@dataclass(frozen=True)
class Package:
    zip_bytes: int
    unzipped_bytes: int
    files: int
    by_top: dict[str, int]  # top-level entry -> unzipped bytes
    error: str = ""


def _package(temp: str, progress: Progress) -> Package:
    """`chalice package` of a copy of the project into `temp`/out; the zip unpacked in `temp`/task."""
    project = Path(temp) / "project"
    wheels = Path(temp) / "wheels"
    wheels.mkdir()
    project.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "deployments")
    # A copy, so chalice's caches (.chalice/deployments) never land in the work tree.
    shutil.copy2(REPO / "app.py", project / "app.py")
    shutil.copy2(REPO / "requirements.txt", project / "requirements.txt")
    shutil.copytree(REPO / "chalicelib", project / "chalicelib", ignore=ignore)
    # The example stages, as configure.py writes a stage: the work tree's .chalice/ is the
    # operator's, and holds none in a fresh clone.
    shutil.copytree(EXAMPLE_STAGES, project / ".chalice", ignore=ignore)
    env = dict(os.environ)
    env.update(
        AWS_DEFAULT_REGION="us-east-1",
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(wheels),
    )
    chalice = Path(sys.executable).parent / "chalice"
    out = Path(temp) / "out"
    progress("coldstart: chalice package (offline)")
    done = subprocess.run(
        [str(chalice), "package", "--stage", "prod", str(out)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    archive = out / "deployment.zip"
    if done.returncode != 0 or not archive.exists():
        return Package(0, 0, 0, {}, error=(done.stdout + done.stderr).strip()[-500:])
    with zipfile.ZipFile(archive) as zipped:
        entries = zipped.infolist()
        zipped.extractall(Path(temp) / "task")
    by_top: Counter[str] = Counter()
    for entry in entries:
        by_top[entry.filename.split("/", 1)[0]] += entry.file_size
    return Package(
        zip_bytes=archive.stat().st_size,
        unzipped_bytes=sum(e.file_size for e in entries),
        files=len(entries),
        by_top=dict(by_top.most_common()),
    )


def _installed_bytes(distribution: str) -> int:
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        return 0
    return sum(f.size or 0 for f in files)


def run(progress: Progress, *, quick: bool = False) -> Section:
    runs = 3 if quick else RUNS
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LBF_"))}
    # The zip's own code never gets a bytecode cache, as on Lambda's read-only /var/task.
    base["PYTHONDONTWRITEBYTECODE"] = "1"
    disabled = base | {"POWERTOOLS_TRACE_DISABLED": "true"}
    with tempfile.TemporaryDirectory(prefix="lbf-package-") as temp:
        package = _package(temp, progress)
        # Without a package (chalice failed), import from the work tree instead, and say so.
        task = Path(temp) / "task" if not package.error else REPO
        progress(f"coldstart: {runs} fresh imports each, three ways")
        as_deployed = _import_runs(task, disabled, runs)
        with tempfile.TemporaryDirectory(prefix="lbf-nocache-") as empty:
            uncached = _import_runs(task, disabled | {"PYTHONPYCACHEPREFIX": empty}, runs)
        traced = _import_runs(task, base | {"POWERTOOLS_TRACE_DISABLED": "false"}, runs)
    clients = _client_seconds(base, max(3, runs // 2))
    layer = {d: _installed_bytes(d) for d in LAYER_DISTRIBUTIONS}
    return _section(as_deployed, uncached, traced, clients, package, layer)


def _section(
    as_deployed: list[ImportRun],
    uncached: list[ImportRun],
    traced: list[ImportRun],
    clients: list[float],
    package: Package,
    layer: dict[str, int],
) -> Section:
    section = Section(name="coldstart", title="Cold start and size")
    headline = median([r.total_ms for r in as_deployed])
    worst = median([r.total_ms for r in uncached])
    with_tracing = median([r.total_ms for r in traced])
    where = "the work tree (no package)" if package.error else "the unzipped package"
    section.figures += [
        Figure(
            "import app.py, tracing disabled",
            f"{headline:.0f} ms (median of {len(as_deployed)})",
            target=f"< {IMPORT_TARGET_MS} ms",
            met=headline < IMPORT_TARGET_MS,
            note=f"from {where}: its own code compiles each time, libraries precompiled",
        ),
        Figure(
            "the same, nothing precompiled",
            f"{worst:.0f} ms",
            note="upper bound, for a layer shipped without .pyc: every module compiles",
        ),
        Figure(
            "import app.py, tracing enabled (prod)",
            f"{with_tracing:.0f} ms",
            note="Powertools' Tracer imports the X-Ray SDK; the prod stage pays it for traces",
        ),
        Figure(
            "first invocation: import boto3, make 4 clients",
            f"{median(clients) * 1000:.0f} ms (median of {len(clients)})",
            note="paid once per execution environment, by its first invocation, not at import",
        ),
    ]
    if package.error:
        section.figures.append(
            Figure(
                "deployment package",
                "not built",
                target=f"< {PACKAGE_TARGET_MB} MB unzipped",
                met=False,
                note=f"chalice package failed offline: {package.error}",
            )
        )
    else:
        top = ", ".join(f"{name} {size / 1024:.0f} KiB" for name, size in package.by_top.items())
        section.figures.append(
            Figure(
                "deployment package (chalice package)",
                f"{package.unzipped_bytes / 1e6:.2f} MB unzipped, {package.zip_bytes / 1e3:.0f} KB "
                f"zipped, {package.files} files",
                target=f"< {PACKAGE_TARGET_MB} MB unzipped",
                met=package.unzipped_bytes < PACKAGE_TARGET_MB * 1e6,
                note=f"by size: {top}",
            )
        )
    layer_total = sum(layer.values())
    section.figures.append(
        Figure(
            "Powertools layer (not in the package)",
            f"about {layer_total / 1e6:.1f} MB installed",
            note="Powertools, the X-Ray SDK and their pure-Python dependencies as installed "
            "here; the layer counts toward Lambda's 250 MB limit, not the package",
        )
    )
    children: dict[str, list[float]] = {}
    for run in as_deployed:
        for name, ms in run.children.items():
            children.setdefault(name, []).append(ms)
    heaviest = sorted(((median(v), k) for k, v in children.items()), reverse=True)[:8]
    section.details += [
        'Fresh processes of `python -X importtime -c "import app"` in the unzipped '
        "`chalice package` output (as Lambda's /var/task: the zip has no .pyc, so app.py, "
        "chalicelib and chalice's runtime compile at each cold start; libraries precompiled); "
        "the figure is the `app` line's cumulative time, median of the runs. *nothing precompiled*: "
        "PYTHONPYCACHEPREFIX set to an empty directory, so every module compiles from source. "
        "*first invocation*: app.py makes its boto3 clients lazily (a client made before moto "
        "starts would not be mocked, and settings are read per invocation), so the first "
        "invocation imports boto3 and makes the EC2, Route 53, SSM and SNS clients.",
        table(
            ("imported by app.py", "cumulative ms (median)"), [(k, f"{v:.1f}") for v, k in heaviest]
        ),
        table(
            ("package entry", "unzipped KiB"),
            [(k, f"{v / 1024:.0f}") for k, v in package.by_top.items()],
        )
        if not package.error
        else f"`chalice package` failed: {package.error}",
    ]
    section.data = {
        "import_ms": {
            "tracing_disabled": [r.total_ms for r in as_deployed],
            "nothing_precompiled": [r.total_ms for r in uncached],
            "tracing_enabled": [r.total_ms for r in traced],
        },
        "first_invocation_clients_s": clients,
        "package": package.__dict__,
        "layer_bytes": layer,
    }
    return section
