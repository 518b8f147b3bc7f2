"""The `LBF_` prefix is the controller's: it refuses an `LBF_` name it does not know, so that a
misspelt safety switch is never ignored. What runs on an LB, the stand-in that runs it locally,
the documents that ship it and the benchmarks name their own variables `LBSIDE_`; every `LBF_`
name left in them is a setting the controller itself reads (chalicelib/config/).
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.kit.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"\bLBF_[A-Z0-9_]+")


def _controller_settings() -> set[str]:
    sources = sorted((ROOT / "chalicelib" / "config").glob("*.py"))
    return {
        name for path in sources for name in re.findall(r'"(LBF_[A-Z0-9_]+)"', path.read_text())
    }


def _lb_side_texts() -> dict[str, str]:
    paths = [
        *(ROOT / "infra" / "lb").iterdir(),
        *(ROOT / "infra" / "ssm").iterdir(),
        ROOT / "infra" / "cloudformation" / "ssm-document.json",
        ROOT / "infra" / "render_document.py",
        ROOT / "infra" / "update_config.py",
        *(ROOT / "standin").glob("*.py"),
        *(ROOT / "bench").glob("*.py"),
        *(ROOT / "tests" / "e2e").glob("*.py"),
    ]
    texts = {str(path.relative_to(ROOT)): path.read_text() for path in paths if path.is_file()}
    render = load_script(ROOT / "infra" / "render_document.py")
    texts["rendered user data"] = render.user_data()
    return texts


def test_the_lb_side_uses_no_lbf_name_the_controller_does_not_read() -> None:
    known = _controller_settings()
    assert {"LBF_CLUSTER", "LBF_PARAMETER_PREFIX", "LBF_DRY_RUN"} <= known
    strays = {
        f"{where}: {name}"
        for where, text in _lb_side_texts().items()
        for name in NAME.findall(text)
        if name not in known
    }
    assert strays == set()


def test_the_lb_side_variables_are_named_lbside() -> None:
    texts = _lb_side_texts()
    for name in ("LBSIDE_HAPROXY_CONFIG", "LBSIDE_BACKENDS_FILE", "LBSIDE_HAPROXY_SOCKET"):
        assert name in texts["infra/lb/apply-backends.sh"]
    assert "LBSIDE_BIND" in texts["infra/lb/haproxy.cfg"]
    assert "LBSIDE_FILES_DIR" in texts["rendered user data"]


def test_only_the_stand_in_lets_loopback_backends_through() -> None:
    """LBSIDE_ALLOW_LOOPBACK is the local stand-in's switch: nothing an LB receives sets it (no
    document parameter, no line of the documents or the user data), only standin/haproxy.py."""
    setting = re.compile(r"LBSIDE_ALLOW_LOOPBACK\s*[=:]\s*[\"']?1")
    texts = _lb_side_texts()
    setters = sorted(where for where, text in texts.items() if setting.search(text))
    assert setters == ["standin/haproxy.py"]
    render = load_script(ROOT / "infra" / "render_document.py")
    for document in (render.document(), render.update_config_document()):
        assert "LOOPBACK" not in str(document["parameters"]).upper()
    script = (ROOT / "infra" / "lb" / "apply-backends.sh").read_text()
    assert 'allow_loopback="${LBSIDE_ALLOW_LOOPBACK:-}"' in script
