"""What the deployed functions are configured with: the committed example stages
(infra/stages/.chalice/config.json, what infra/configure.py writes for a new stage)."""

from __future__ import annotations

import json
from typing import Any

from bench.report import REPO

# The committed example stages: an operator's own .chalice/ is generated and never tracked.
EXAMPLE_STAGES = REPO / "infra" / "stages" / ".chalice"


def chalice_config() -> dict[str, Any]:
    config: dict[str, Any] = json.loads((EXAMPLE_STAGES / "config.json").read_text())
    return config


def lambda_memory_mb(stage: str = "prod", function: str = "reconcile") -> int:
    """A function's memory as chalice resolves it: the function's entry in the stage's
    `lambda_functions`, else the stage's setting, else the top level's, else 128."""
    config = chalice_config()
    stage_config = config.get("stages", {}).get(stage, {})
    own = stage_config.get("lambda_functions", {}).get(function, {})
    for level in (own, stage_config, config):
        if level.get("lambda_memory_size") is not None:
            return int(level["lambda_memory_size"])
    return 128
