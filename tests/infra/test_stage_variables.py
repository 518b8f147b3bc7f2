"""The stages' variables are settings the controller accepts: the stages infra/configure.py wrote
into this checkout's .chalice/config.json (never tracked), else the committed examples.

A stage that sets an `LBF_` name the controller does not know would stop every invocation with a
configuration error after a deploy; this catches it before.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.config import Settings
from chalicelib.config.variables import KNOWN_VARIABLES
from chalicelib.stage import stage_environment

ROOT = Path(__file__).resolve().parents[2]
CONFIG_PATH = ROOT / ".chalice" / "config.json"
if not CONFIG_PATH.is_file():
    CONFIG_PATH = ROOT / "infra" / "stages" / ".chalice" / "config.json"
CONFIG = json.loads(CONFIG_PATH.read_text())
STAGES = sorted(CONFIG["stages"])


def every_variable_block(stage: str) -> list[dict[str, str]]:
    """The top level's, the stage's and each of its functions' environment variables."""
    config = CONFIG["stages"][stage]
    blocks = [CONFIG.get("environment_variables", {}), config.get("environment_variables", {})]
    for function in config.get("lambda_functions", {}).values():
        blocks.append(function.get("environment_variables", {}))
    return blocks


def test_there_are_stages_to_check() -> None:
    assert {"dev", "prod"} <= set(STAGES)


@pytest.mark.parametrize("stage", STAGES)
def test_every_lbf_variable_of_a_stage_is_a_known_setting(stage: str) -> None:
    names = {name for block in every_variable_block(stage) for name in block}
    lbf = {name for name in names if name.upper().startswith("LBF_")}
    assert lbf, "a stage sets the required LBF_ variables"
    assert lbf <= KNOWN_VARIABLES, sorted(lbf - KNOWN_VARIABLES)


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_environment_is_valid_settings(stage: str) -> None:
    environment = stage_environment(stage, CONFIG_PATH)
    for block in every_variable_block(stage)[2:]:
        environment = {**environment, **{k: str(v) for k, v in block.items()}}

    settings = Settings.from_env(environment)

    assert settings.cluster == environment["LBF_CLUSTER"]
    # A deployed function talks to AWS's own endpoints: loopback web servers never enter its lists.
    assert not settings.loopback_allowed
