"""Where a deployed stage's prober function is, for the command line's `--stage`.

The deployed controller gets LBF_PROBER_FUNCTION from its template (a reference to the function:
`chalice package` does not name functions predictably), so `.chalice/config.json` cannot hold it.
An operator's `status --probe --stage prod` finds it the way chalice records a deploy: in
`.chalice/deployed/<stage>.json` after `chalice deploy`, or in the outputs of the stage's stack
`lb-failover-<stage>` after `chalice package` and CloudFormation (infra/DEPLOY.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chalicelib.adapters.clients import call
from chalicelib.errors import AwsError

FUNCTION = "probe_private"  # the handler's name in app.py, and chalice's resource name for it
STACK = "lb-failover-{stage}"
OUTPUT = "ProbePrivateFunctionName"


def declared(stage: str, config_path: Path) -> bool:
    """Whether `.chalice/config.json` gives the stage the prober function (infra/configure.py
    always does; the template then sets LBF_PROBER_FUNCTION on the controllers)."""
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError):
        return False
    functions = config.get("stages", {}).get(stage, {}).get("lambda_functions", {})
    return isinstance(functions, dict) and FUNCTION in functions


def prober_function(
    stage: str, project: Path, cloudformation: Callable[[], Any]
) -> tuple[str | None, str]:
    """(the function, where it was found) or (None, why not); never raises for a missing one."""
    recorded = project / ".chalice" / "deployed" / f"{stage}.json"
    try:
        deployed = json.loads(recorded.read_text())
    except FileNotFoundError:
        deployed = None
    except (OSError, ValueError) as exc:
        return None, f"cannot read {recorded}: {exc}"
    if deployed is not None:
        for resource in deployed.get("resources", []):
            if resource.get("name") == FUNCTION and resource.get("lambda_arn"):
                return str(resource["lambda_arn"]), str(recorded)
    stack = STACK.format(stage=stage)
    try:
        described = call(
            "cloudformation", "DescribeStacks", cloudformation().describe_stacks, StackName=stack
        )
    except AwsError as exc:
        return None, f"stack {stack} not read: {exc}"
    for output in described["Stacks"][0].get("Outputs", []):
        if output.get("OutputKey") == OUTPUT:
            return str(output["OutputValue"]), f"stack {stack}, output {OUTPUT}"
    return None, f"stack {stack} has no output {OUTPUT}"
