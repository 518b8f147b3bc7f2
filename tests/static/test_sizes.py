"""Sizes a reader can hold: no function in chalicelib/ over 60 lines or cyclomatic complexity 15.

Lines are counted on the syntax tree, from the `def` line to the function's last line (methods
and nested functions each count on their own). Complexity is ruff's C901, with the limit set in
pyproject.toml, so that `make check`'s ruff holds the same rule while editing.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MAX_LINES = 60
MAX_COMPLEXITY = 15

# Functions allowed over a limit, and which: none. An entry needs a reason a reader accepts.
ALLOWED_OVER: dict[str, set[str]] = {}


def _functions(tree: ast.AST) -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function with its qualified name (`Settings.from_env`, `outer.inner`)."""
    found = []
    stack: list[tuple[ast.AST, str]] = [(tree, "")]
    while stack:
        node, prefix = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    found.append((name, child))
                stack.append((child, f"{name}."))
            else:
                stack.append((child, prefix))
    return found


def long_functions(root: Path) -> dict[str, int]:
    """`path:function` -> lines, for each function under root/chalicelib over MAX_LINES."""
    over = {}
    for path in sorted((root / "chalicelib").rglob("*.py")):
        for name, function in _functions(ast.parse(path.read_text())):
            lines = (function.end_lineno or function.lineno) - function.lineno + 1
            if lines > MAX_LINES:
                over[f"{path.relative_to(root).as_posix()}:{name}"] = lines
    return over


def complex_functions(root: Path) -> dict[str, str]:
    """`path:function` -> ruff's message, for each function under root/chalicelib over the limit.

    ruff runs with the repository's pyproject.toml minus its per-file-ignores, so a file-wide
    exemption added there never hides a new function: ALLOWED_OVER is the only exemption.
    """
    command = [
        *_ruff(),
        "check",
        "--no-cache",
        "--select",
        "C901",
        "--config",
        str(REPO / "pyproject.toml"),
        "--config",
        "lint.per-file-ignores = {}",
        "--output-format",
        "json",
        "chalicelib",
    ]
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    assert done.returncode in (0, 1), done.stderr
    over = {}
    for finding in json.loads(done.stdout):
        assert finding["code"] == "C901", finding
        path = Path(finding["filename"]).resolve().relative_to(root.resolve()).as_posix()
        row = finding["location"]["row"]
        tree = ast.parse((root / path).read_text())
        [name] = [n for n, f in _functions(tree) if f.lineno == row]
        over[f"{path}:{name}"] = finding["message"]
    return over


def _ruff() -> list[str]:
    beside = Path(sys.executable).parent / "ruff"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("ruff")
    assert found is not None, "ruff is not installed"
    return [found]


def oversized(root: Path) -> list[str]:
    """What breaks a limit and is not on ALLOWED_OVER for that limit, one line each."""
    found = [
        f"{name}: {lines} lines (at most {MAX_LINES})"
        for name, lines in long_functions(root).items()
        if "lines" not in ALLOWED_OVER.get(name, set())
    ]
    found += [
        f"{name}: {message}"
        for name, message in complex_functions(root).items()
        if "complexity" not in ALLOWED_OVER.get(name, set())
    ]
    return found


def test_no_function_in_chalicelib_is_over_a_limit() -> None:
    found = oversized(REPO)

    assert found == [], "split these functions:\n" + "\n".join(found)


def test_every_allowed_function_still_breaks_its_limit() -> None:
    """An exemption goes once its function fits, so that it stays fitting."""
    long = long_functions(REPO)
    complex_ = complex_functions(REPO)
    fitting = [
        f"{name}: {limit}"
        for name, limits in ALLOWED_OVER.items()
        for limit in sorted(limits)
        if name not in (long if limit == "lines" else complex_)
    ]

    assert fitting == [], "these fit now, take them off ALLOWED_OVER:\n" + "\n".join(fitting)


def test_make_check_holds_the_same_complexity_limit() -> None:
    lint = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]

    assert "C901" in lint["select"]
    assert lint["mccabe"]["max-complexity"] == MAX_COMPLEXITY
    # Outside chalicelib/ the rule does not apply; inside, only an allowed function's file.
    exempt = {path for path, codes in lint["per-file-ignores"].items() if "C901" in codes}
    today = {name.split(":")[0] for name, limits in ALLOWED_OVER.items() if "complexity" in limits}
    assert exempt == {"!chalicelib/**"} | today


# --- the check would catch a function planted over a limit -------------------------------------


def _copy_with(tmp_path: Path, name: str, source: str) -> Path:
    """A copy of chalicelib/ with one more module: the check runs on it as on the real one."""
    root = tmp_path / "copy"
    shutil.copytree(REPO / "chalicelib", root / "chalicelib", ignore=_caches)
    (root / "chalicelib" / name).write_text(source)
    return root


def _caches(directory: str, names: list[str]) -> set[str]:
    return {name for name in names if name == "__pycache__"}


def test_a_function_of_61_lines_fails(tmp_path: Path) -> None:
    body = "".join(f"    total += {i}\n" for i in range(58))
    root = _copy_with(
        tmp_path, "grown.py", f"def grown() -> int:\n    total = 0\n{body}    return total\n"
    )

    assert oversized(root) == ["chalicelib/grown.py:grown: 61 lines (at most 60)"]


def test_a_function_of_60_lines_passes(tmp_path: Path) -> None:
    body = "".join(f"    total += {i}\n" for i in range(57))
    root = _copy_with(
        tmp_path, "fits.py", f"def fits() -> int:\n    total = 0\n{body}    return total\n"
    )

    assert oversized(root) == []


@pytest.mark.parametrize(("branches", "fails"), [(15, True), (14, False)])
def test_a_function_over_complexity_15_fails(tmp_path: Path, branches: int, fails: bool) -> None:
    """`branches` ifs make a complexity of branches + 1."""
    body = "".join(f"    if x == {i}:\n        return {i}\n" for i in range(branches))
    root = _copy_with(tmp_path, "tangled.py", f"def tangled(x: int) -> int:\n{body}    return -1\n")

    found = oversized(root)

    if fails:
        assert found == ["chalicelib/tangled.py:tangled: `tangled` is too complex (16 > 15)"]
    else:
        assert found == []


def test_a_long_method_is_named_with_its_class(tmp_path: Path) -> None:
    body = "".join(f"        total += {i}\n" for i in range(60))
    source = (
        f"class Job:\n    def run(self) -> int:\n        total = 0\n{body}        return total\n"
    )
    root = _copy_with(tmp_path, "job.py", source)

    assert oversized(root) == ["chalicelib/job.py:Job.run: 63 lines (at most 60)"]
