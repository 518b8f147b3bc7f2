"""One write path: only chalicelib/executor.py calls a write of the services (SPEC, issue 10).

A structural test, so that a future bypass fails CI instead of waiting for someone to notice that
a dry run or the pause switch was forgotten somewhere. It walks the syntax tree of the controller
(chalicelib/ and app.py) and reports every use of a write method outside the executor:

- a write method of the services' writer protocols (`services.py`: `InventoryWriter.create_tags`,
  `RecordsWriter.change`, `ParametersWriter.put`, `PushesWriter.send`, `Notifier.publish`,
  `HealthChecksWriter.create/update/delete`, and any method added to a protocol or an adapter
  class later that is not listed as a read), reached through the services or their writers
  (`services.records.change`, `self._writers...`), through
  a local name bound to a service (`checks = services.health_checks`), through a parameter or
  variable annotated with a protocol or an adapter class, or taken as a bound method without a
  call (`send = services.pushes.send`) or with `getattr`;
- a boto3 client operation that is not a read (chalicelib/adapters/operations.is_write), anywhere
  outside the adapters: of the services the controller uses, under any name; of every other
  service botocore knows, when called as boto3 calls it (keyword arguments only) or on a client;
- a boto3 resource action that writes (`boto3.resource("ec2").Instance(i).terminate()`: boto3's
  resource models, each action judged by the operation it sends), on a resource;
- `Services.writers` read anywhere but the executor: jobs hold the readers only, on which mypy
  refuses a write (test_planted_bypasses.py), and this keeps the writers out of their reach.

The adapters' own definitions (chalicelib/adapters/) are where the writes are implemented and
are not checked; deploy helpers under infra/ are outside the rule.
"""

from __future__ import annotations

import ast
import gzip
import inspect
import json
import textwrap
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore import xform_name

from chalicelib import services as services_module
from chalicelib.adapters.ec2 import Ec2Inventory
from chalicelib.adapters.notify import SnsNotifier
from chalicelib.adapters.operations import is_write
from chalicelib.adapters.probe import SocketProber
from chalicelib.adapters.route53 import Route53Records
from chalicelib.adapters.route53_health_checks import Route53HealthChecks
from chalicelib.adapters.ssm import SsmParameters, SsmPushes

REPO = Path(__file__).resolve().parents[2]
ALLOWED = {"chalicelib/executor.py"}
ADAPTERS = "chalicelib/adapters/"

# The protocols' reads; every other method of a protocol counts as a write.
READ_METHODS = frozenset(
    {
        "describe",
        "describe_other_clusters",
        "address_holder",
        "read",
        "change_status",
        "recent",
        "status",
        "probe_round",
    }
)
PROTOCOLS = (
    services_module.Inventory,
    services_module.InventoryWriter,
    services_module.Records,
    services_module.RecordsWriter,
    services_module.Parameters,
    services_module.ParametersWriter,
    services_module.Pushes,
    services_module.PushesWriter,
    services_module.Notifier,
    services_module.HealthChecks,
    services_module.HealthChecksWriter,
    services_module.Prober,
)
ADAPTER_CLASSES = (
    Ec2Inventory,
    Route53Records,
    SsmParameters,
    SsmPushes,
    SnsNotifier,
    Route53HealthChecks,
    SocketProber,
)
# Names under which the services are reached: the fields of Services and of its Writers.
SERVICE_FIELDS = frozenset(services_module.Services.__dataclass_fields__) | frozenset(
    services_module.Writers.__dataclass_fields__
)
WRITERS_FIELD = "writers"
# Types that mark a name as a service: the protocols, Services, Writers and the adapter classes.
SERVICE_TYPES = frozenset(
    {p.__name__ for p in PROTOCOLS}
    | {"Services", "Writers"}
    | {cls.__name__ for cls in ADAPTER_CLASSES}
)
# The services the controller uses: their writes are refused under any name, called or not.
BOTO_SERVICES = ("ec2", "route53", "ssm", "sns", "lambda")
# What makes a receiver an AWS client or resource: made by `client(...)`/`resource(...)` (boto3's,
# a session's, the adapters' `client`), or named or annotated so (`cfn_client`, `EC2Client`).
AWS_MAKERS = frozenset({"client", "resource"})
AWS_TYPE_SUFFIXES = ("Client", "ServiceResource")


def protocol_write_methods() -> frozenset[str]:
    """Every public method of a protocol or an adapter that is not a read."""
    methods: set[str] = set()
    for protocol in (*PROTOCOLS, *ADAPTER_CLASSES):
        for name, _ in inspect.getmembers(protocol, inspect.isfunction):
            if not name.startswith("_") and name not in READ_METHODS:
                methods.add(name)
    return frozenset(methods)


def _latest_models(root: Path, kind: str) -> list[Path]:
    """`<root>/<service>/<newest version>/<kind>.json[.gz]`: botocore's and boto3's data layout."""
    models = []
    for service in sorted(p for p in root.iterdir() if p.is_dir()):
        versions = sorted(v for v in service.iterdir() if v.is_dir())
        for name in (f"{kind}.json.gz", f"{kind}.json"):
            if versions and (versions[-1] / name).exists():
                models.append(versions[-1] / name)
                break
    return models


def _load(model: Path) -> dict[str, Any]:
    data = model.read_bytes()
    loaded: dict[str, Any] = json.loads(gzip.decompress(data) if model.suffix == ".gz" else data)
    return loaded


def boto_write_operations(services: tuple[str, ...]) -> frozenset[str]:
    session = botocore.session.get_session()
    operations: set[str] = set()
    for service in services:
        for operation in session.get_service_model(service).operation_names:
            if is_write(operation):
                operations.add(xform_name(operation))
    return frozenset(operations)


def every_aws_write() -> frozenset[str]:
    """The writes of every service botocore knows (400+), as boto3 names them.

    Read from botocore's data files directly: its loader takes seconds more for the same names.
    """
    operations: set[str] = set()
    for search_path in botocore.session.get_session().get_component("data_loader").search_paths:
        if Path(search_path).is_dir():
            for model in _latest_models(Path(search_path), "service-2"):
                operations |= {xform_name(o) for o in _load(model)["operations"] if is_write(o)}
    return frozenset(operations)


def resource_write_actions() -> frozenset[str]:
    """boto3 resource actions (`Instance.terminate`, `Stack.delete`) whose request writes."""
    actions: set[str] = set()
    for model in _latest_models(Path(boto3.__file__).parent / "data", "resources-1"):
        loaded = _load(model)
        resources = [loaded["service"], *loaded.get("resources", {}).values()]
        for resource in resources:
            for kind in ("actions", "batchActions"):
                for name, action in resource.get(kind, {}).items():
                    if is_write(action["request"]["operation"]):
                        actions.add(xform_name(name))
    return frozenset(actions)


WRITE_METHODS = protocol_write_methods()
BOTO_WRITES = boto_write_operations(BOTO_SERVICES)
AWS_WRITES = every_aws_write()
RESOURCE_WRITES = resource_write_actions()


def _chain(node: ast.expr) -> list[str]:
    """`self._services.records` -> ["self", "_services", "records"]; [] if not a plain chain."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return parts[::-1]
    if isinstance(node, ast.Call):
        parts.append(_called_name(node))
        return parts[::-1]
    return []


def _called_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _annotation_names(annotation: ast.expr | None) -> set[str]:
    if annotation is None:
        return set()
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:
            annotation = ast.parse(annotation.value, mode="eval").body
        except SyntaxError:
            return set()
    return {n.id for n in ast.walk(annotation) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(annotation) if isinstance(n, ast.Attribute)
    }


class _Scope:
    """Names bound to a service, or to an AWS client or resource, in one function (or the
    module), by assignment or annotation."""

    def __init__(self, parent: _Scope | None = None) -> None:
        self.parent = parent
        self.services: set[str] = set()
        self.aws: set[str] = set()

    def is_service_name(self, name: str) -> bool:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.services:
                return True
            scope = scope.parent
        return False

    def is_aws_name(self, name: str) -> bool:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.aws:
                return True
            scope = scope.parent
        return False


def _is_service(node: ast.expr, scope: _Scope) -> bool:
    chain = _chain(node)
    if not chain:
        return False
    if any(part in SERVICE_FIELDS or part in SERVICE_TYPES for part in chain):
        return True
    return scope.is_service_name(chain[0])


def _receiver_parts(node: ast.expr) -> tuple[list[str], list[str]]:
    """Down a receiver, through attributes, calls and subscripts: (the names and attributes it
    reads, the names of what it calls). `boto3.resource("ec2").Instance(i)` ->
    (["Instance", "resource", "boto3"], ["Instance", "resource"])."""
    names: list[str] = []
    called: list[str] = []
    current: ast.expr | None = node
    while current is not None:
        if isinstance(current, ast.Attribute):
            names.append(current.attr)
            current = current.value
        elif isinstance(current, ast.Call):
            called.append(_called_name(current))
            current = current.func
        elif isinstance(current, ast.Subscript):
            current = current.value
        elif isinstance(current, ast.Name):
            names.append(current.id)
            current = None
        else:
            current = None
    return names, called


def _is_aws_name(name: str) -> bool:
    lowered = name.lower()
    return lowered.endswith(tuple(AWS_MAKERS)) or name.endswith(AWS_TYPE_SUFFIXES)


def _is_aws(node: ast.expr, scope: _Scope) -> bool:
    """An AWS client or resource: made on the spot, named so, or bound to one earlier."""
    names, called = _receiver_parts(node)
    if any(name in AWS_MAKERS for name in called) or any(_is_aws_name(n) for n in names):
        return True
    return bool(names) and scope.is_aws_name(names[-1])


def _called_as_boto3(call: ast.Call) -> bool:
    """boto3 takes an operation's parameters as keywords, each capitalised: `StackName=...`."""
    return not call.args and all(
        keyword.arg is None or keyword.arg[:1].isupper() for keyword in call.keywords
    )


def _boto3_write(node: ast.Attribute, parent: ast.AST | None, scope: _Scope) -> str | None:
    """What an AWS write through boto3 is, or None: a client operation or a resource action."""
    if node.attr in BOTO_WRITES:
        return f"boto3 write {node.attr}"
    if node.attr in AWS_WRITES | RESOURCE_WRITES and _is_aws(node.value, scope):
        return f"boto3 write {node.attr}"
    called = isinstance(parent, ast.Call) and parent.func is node
    if node.attr in AWS_WRITES and called and parent.keywords and _called_as_boto3(parent):
        return f"boto3 write {node.attr}"
    return None


def _bind_parameters(
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda, scope: _Scope
) -> None:
    arguments = node.args
    for argument in (
        *arguments.posonlyargs,
        *arguments.args,
        *arguments.kwonlyargs,
        *([arguments.vararg] if arguments.vararg else []),
        *([arguments.kwarg] if arguments.kwarg else []),
    ):
        annotated = _annotation_names(argument.annotation)
        if annotated & SERVICE_TYPES or (
            argument.arg in SERVICE_FIELDS or argument.arg == "services"
        ):
            scope.services.add(argument.arg)
        if any(_is_aws_name(name) for name in annotated):
            scope.aws.add(argument.arg)


def violations(source: str, path: str) -> list[str]:
    """Every use of a write outside the executor, as `path:line: what`."""
    if path in ALLOWED or path.startswith(ADAPTERS):
        return []
    tree = ast.parse(source)
    found: list[str] = []

    def visit(node: ast.AST, scope: _Scope, parent: ast.AST | None) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            inner = _Scope(scope)
            _bind_parameters(node, inner)
            _bind(node, inner)
            for child in ast.iter_child_nodes(node):
                visit(child, inner, node)
            return
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            if node.attr in WRITE_METHODS and _is_service(node.value, scope):
                found.append(f"{path}:{node.lineno}: {ast.unparse(node)}")
            elif node.attr == WRITERS_FIELD:
                found.append(f"{path}:{node.lineno}: reads Services.writers: {ast.unparse(node)}")
            elif (write := _boto3_write(node, parent, scope)) is not None:
                found.append(f"{path}:{node.lineno}: {write}")
        if (
            isinstance(node, ast.Call)
            and _called_name(node) == "getattr"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and (
                node.args[1].value in WRITE_METHODS | BOTO_WRITES
                or (
                    node.args[1].value in AWS_WRITES | RESOURCE_WRITES
                    and _is_aws(node.args[0], scope)
                )
            )
        ):
            found.append(f"{path}:{node.lineno}: {ast.unparse(node)}")
        for child in ast.iter_child_nodes(node):
            visit(child, scope, node)

    def _bind(function: ast.AST, scope: _Scope) -> None:
        """Names assigned a service, or an AWS client or resource, anywhere in this function's
        own body (not nested ones)."""
        for _ in range(3):  # a few passes: `a = services.x; b = a`
            for node in _own_nodes(function):
                for name, value in _assigned(node):
                    if value is not None and _is_service(value, scope):
                        scope.services.add(name)
                    if value is not None and _is_aws(value, scope):
                        scope.aws.add(name)
                if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                    annotated = _annotation_names(node.annotation)
                    if annotated & SERVICE_TYPES:
                        scope.services.add(node.target.id)
                    if any(_is_aws_name(name) for name in annotated):
                        scope.aws.add(node.target.id)

    module = _Scope()
    _bind(tree, module)
    visit(tree, module, None)
    return found


def _assigned(node: ast.AST) -> list[tuple[str, ast.expr | None]]:
    """The names a statement binds, each with the value bound (`a = b`, `a: T = b`, `(a := b)`,
    `with b as a`)."""
    pairs: list[tuple[ast.expr, ast.expr | None]] = []
    if isinstance(node, ast.Assign):
        pairs = [(target, node.value) for target in node.targets]
    elif isinstance(node, ast.AnnAssign | ast.NamedExpr):
        pairs = [(node.target, node.value)]
    elif isinstance(node, ast.With | ast.AsyncWith):
        pairs = [(i.optional_vars, i.context_expr) for i in node.items if i.optional_vars]
    return [
        (name.id, value)
        for target, value in pairs
        for name in ast.walk(target)
        if isinstance(name, ast.Name)
    ]


def _own_nodes(function: ast.AST) -> list[ast.AST]:
    nodes: list[ast.AST] = []
    stack = list(ast.iter_child_nodes(function))
    while stack:
        node = stack.pop()
        nodes.append(node)
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            stack.extend(ast.iter_child_nodes(node))
    return nodes


def controller_sources(root: Path = REPO) -> list[Path]:
    app = root / "app.py"
    return [*sorted((root / "chalicelib").rglob("*.py")), *([app] if app.exists() else [])]


def writes_outside_the_executor(root: Path = REPO) -> list[str]:
    """The check on a tree: the repository, or a copy of part of it with something planted."""
    return [
        violation
        for path in controller_sources(root)
        for violation in violations(path.read_text(), path.relative_to(root).as_posix())
    ]


# --- the rule, on the code as it is ------------------------------------------------------------


def test_only_the_executor_calls_a_write() -> None:
    assert len(controller_sources()) > 20  # the walk found the controller
    found = writes_outside_the_executor()

    assert found == [], "writes outside chalicelib/executor.py:\n" + "\n".join(found)


def test_the_write_methods_are_the_services_writes() -> None:
    """Pinned, so that a new method on a protocol is a write until someone lists it as a read."""
    assert (
        frozenset(
            {
                "create_tags",
                "delete_tags",
                "associate_address",
                "change",
                "put",
                "send",
                "publish",
                "create",
                "update",
                "delete",
            }
        )
        == WRITE_METHODS
    )
    assert {"put_parameter", "send_command", "change_resource_record_sets", "publish"} <= (
        BOTO_WRITES
    )
    assert {"create_tags", "associate_address", "create_health_check"} <= BOTO_WRITES


def test_the_check_sees_every_write_the_executor_makes() -> None:
    """The detector is not blind: on the executor, taken as any other file, it finds them all."""
    source = (REPO / "chalicelib/executor.py").read_text()

    found = violations(source, "chalicelib/elsewhere.py")

    taken = [line for line in found if "reads Services.writers" in line]
    called = {line.rsplit(".", 1)[-1] for line in found if line not in taken}
    assert called == WRITE_METHODS
    assert [line.rsplit(": ", 1)[-1] for line in taken] == ["services.writers"]


def test_the_check_sees_the_boto3_writes_in_the_adapters() -> None:
    """Taken as controller code, each adapter's client call is flagged: the adapters are exempt
    because they are where writes are implemented, not because the check cannot see them."""
    for name, operation in [
        ("ec2.py", "create_tags"),
        ("ssm.py", "put_parameter"),
        ("ssm.py", "send_command"),
        ("route53.py", "change_resource_record_sets"),
        ("notify.py", "publish"),
        ("route53_health_checks.py", "delete_health_check"),
    ]:
        source = (REPO / "chalicelib/adapters" / name).read_text()
        found = violations(source, "chalicelib/jobs.py")
        assert any(line.endswith(f"boto3 write {operation}") for line in found), (name, found)


# --- the rule would catch a bypass -------------------------------------------------------------

BYPASSES = {
    "the notices as jobs.py wrote them before": """
        def _notify(world, settings, services, report, conditions, executor):
            for message in conditions.values():
                if services.notifier is not None:
                    services.notifier.publish("lb-failover", message)
            services.parameters.put(settings.notices_parameter_name, "none")
    """,
    "a health check through a local name": """
        def keep(world, services):
            checks = services.health_checks
            if checks is None:
                return
            checks.create(spec, "ref", ())
    """,
    "through an annotated parameter": """
        def tell(notifier: Notifier, text: str) -> None:
            notifier.publish("subject", text)
    """,
    "through an adapter made on the spot": """
        def tag(client):
            Ec2Inventory(client).create_tags(["i-1"], [("lbf:state", "active")])
    """,
    "a bound method taken for later": """
        def later(services):
            push = services.pushes.send
            return push
    """,
    "the executor's own attribute": """
        class Sneaky:
            def go(self, change):
                self._services.records.change(change.changes, comment="x")
    """,
    "getattr": """
        def go(services):
            getattr(services.inventory, "associate_address")("eipalloc-1", "i-1")
    """,
    "a boto3 client": """
        def go():
            client("ssm").put_parameter(Name="/x", Value="y")
    """,
    "a boto3 resource's action": """
        def go(instance_id):
            boto3.resource("ec2").Instance(instance_id).terminate()
    """,
    "a boto3 resource kept in names": """
        def go(instance_id):
            ec2 = boto3.resource("ec2")
            instance = ec2.Instance(instance_id)
            instance.stop(Force=True)
    """,
    "a client of a service the controller does not use": """
        def go():
            boto3.client("cloudformation").delete_stack(StackName="lbf")
    """,
    "that client handed in": """
        def go(cfn):
            cfn.delete_stack(StackName="lbf")
    """,
    "that client annotated": """
        def go(cfn: CloudFormationClient) -> None:
            cfn.delete_stack
    """,
    "the writers taken from the services": """
        def go(services, change):
            writers = services.writers
            return writers
    """,
    "move_active.py tagging as it did before": """
        def move_active(settings, services, clock, *, to=None, drain=None):
            services.inventory.create_tags([drained.instance_id], [("lbf:maintenance", "drain")])
    """,
}


@pytest.mark.parametrize("source", BYPASSES.values(), ids=BYPASSES.keys())
def test_a_write_added_to_jobs_py_fails_the_check(source: str) -> None:
    found = violations(textwrap.dedent(source), "chalicelib/jobs.py")

    assert len(found) >= 1, found


@pytest.mark.parametrize("source", BYPASSES.values(), ids=BYPASSES.keys())
def test_the_same_code_in_the_executor_is_allowed(source: str) -> None:
    assert violations(textwrap.dedent(source), "chalicelib/executor.py") == []


def test_the_real_jobs_py_with_a_bypass_added_fails() -> None:
    """The file as it is, plus one line a hurried fix might add."""
    source = (REPO / "chalicelib/jobs.py").read_text() + textwrap.dedent(
        """

        def _quick_notice(services, text):
            services.notifier.publish("lb-failover", text)
        """
    )

    found = violations(source, "chalicelib/jobs.py")

    assert len(found) == 1
    assert "services.notifier.publish" in found[0]


@pytest.mark.parametrize(
    "source",
    [
        "def f(conditions: dict[str, str]) -> None:\n    conditions.update({'a': 'b'})",
        "import os\ndef f(environment):\n    os.environ.update(environment)",
        "def f(merged: dict, stage: dict):\n    merged.update(stage)",
        "def f(services):\n    return services.records.change_status('C1')",
        "def f(services, cluster):\n    return services.health_checks.read(cluster)",
        # Reads of any client or resource, and methods that share a write's name.
        "def f(i):\n    return boto3.resource('ec2').Instance(i).load()",
        "def f():\n    return boto3.client('cloudformation').describe_stacks(StackName='lbf')",
        "def f(parts):\n    return parts.query",
        "def f(commands, ctx):\n    return commands.pause_cluster(ctx, reason='x')",
        "def f(args):\n    return getattr(args, 'probe', False)",
    ],
)
def test_reads_and_unrelated_methods_are_not_writes(source: str) -> None:
    assert violations(source, "chalicelib/jobs.py") == []
