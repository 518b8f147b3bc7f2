"""What the deployed functions are configured with: the committed example stages
(infra/stages/.chalice/config.json, what infra/configure.py writes for a new stage)."""

from __future__ import annotations

import json
from typing import Any

from bench.report import REPO


def chalice_config() -> dict[str, Any]:
    config: dict[str, Any] = json.loads(
        (REPO / "infra" / "stages" / ".chalice" / "config.json").read_text()
    )
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
