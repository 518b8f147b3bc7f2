"""The command line's settings: the environment, or a stage's from `.chalice/config.json` (`--stage`).

A stage's controllers run with the variables chalice gives them, plus LBF_PROBER_FUNCTION from
their template (chalicelib/deployed.py says where that function is). A command run with
`--stage NAME` takes the same: so it probes where the deployed controller probes, and `status`
prints the detection bound that controller has.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from chalicelib import deployed
from chalicelib.config import Settings
from chalicelib.config.reading import ConfigError

CONFIG_PATH = Path(".chalice/config.json")


def stage_environment(stage: str, config_path: Path) -> dict[str, str]:
    """The variables chalice gives a stage: the top level's, overridden by the stage's."""
    if not config_path.exists():
        # The stage files are this checkout's, written by configure.py and never tracked.
        raise ConfigError(
            "--stage",
            f"no stage {stage!r}: {config_path} does not exist here (infra/configure.py writes it, "
            "infra/DEPLOY.md step 6; run from the checkout that deployed the stage)",
        )
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError("--stage", f"cannot read {config_path}: {exc}") from exc
    stages = config.get("stages", {})
    if stage not in stages:
        known = ", ".join(sorted(stages)) or "none"
        raise ConfigError("--stage", f"no stage {stage!r} in {config_path} (stages: {known})")
    merged = dict(config.get("environment_variables", {}))
    merged.update(stages[stage].get("environment_variables", {}))
    return {key: str(value) for key, value in merged.items()}


def environment(environ: Mapping[str, str], stage: str | None) -> dict[str, str]:
    """The variables a command runs with: the environment's, a stage's over them."""
    merged = dict(environ)
    if stage:
        merged.update(stage_environment(stage, CONFIG_PATH))
    return merged


def with_prober(
    settings: Settings,
    environment: Mapping[str, str],
    stage: str,
    *,
    probes: bool,
    bound: bool,
    cloudformation: Callable[[], Any],
) -> tuple[Settings, str | None]:
    """The stage's prober function, as its controllers have it, and a note on where it was found.

    `probes`: the command probes, so it needs where the function is; `bound`: it prints the
    detection bound, so it needs only whether there is one. LBF_PROBER_FUNCTION set: as it is.
    """
    if settings.prober_function is not None:
        return settings, None
    if probes:
        return _with_stage_prober(settings, environment, stage, cloudformation)
    if bound:
        return _with_declared_prober(settings, environment, stage), None
    return settings, None


def _with_stage_prober(
    settings: Settings,
    environment: Mapping[str, str],
    stage: str,
    cloudformation: Callable[[], Any],
) -> tuple[Settings, str]:
    """The deployed stage's prober function, so private targets are probed from inside the VPC.

    Not found (never deployed, or this machine cannot read the stack): the targets are probed
    from here, which is right on a machine inside the VPC and on the local stand-in.
    """
    found, where = deployed.prober_function(stage, Path("."), cloudformation)
    if found is None:
        return settings, f"note: private targets probed from this machine ({where})"
    note = f"note: private targets probed by the prober function {found} ({where})"
    return Settings.from_env({**environment, "LBF_PROBER_FUNCTION": found}), note


def _with_declared_prober(
    settings: Settings, environment: Mapping[str, str], stage: str
) -> Settings:
    """The stage's controllers get LBF_PROBER_FUNCTION from their template whenever the stage
    declares the prober function, and their detection bound then counts its invoke: `status`
    prints the same bound, from the stage's configuration, without looking the function up
    (nothing here invokes it: only `--probe` needs where it is). Validated as they validate it:
    through the function a path needs its invoke's margin, which can refuse an interval or fit
    one round fewer."""
    if not deployed.declared(stage, CONFIG_PATH):
        return settings
    checked = Settings.from_env({**environment, "LBF_PROBER_FUNCTION": deployed.FUNCTION})
    return dataclasses.replace(checked, prober_function=f"{deployed.FUNCTION} of stage {stage}")
