"""When a backend push is overdue, and when an LB whose agent SSM does not know is news.

The SSM document's one step times out after STEP_TIMEOUT_SECONDS: infra/render_document.py
renders this constant into the step's `inputs.timeoutSeconds`, the one place the agent's
aws:runShellScript reads a limit from (without it, an hour). A push still pending
or in progress past it, counted from when it was requested, will not finish: it is reported and
sent again (not cancelled: a late success still confirms the same list).

SendCommand refuses an instance whose SSM agent has not registered (InvalidInstanceId). An LB
that is still booting is not news: its notice waits until the refusal outlasts
AGENT_GRACE_SECONDS after the instance's launch. Either way it is tried again on the next run,
not every round.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.core.model import Push

# The document's step: haproxy -c and a graceful reload take seconds; minutes is a fault.
STEP_TIMEOUT_SECONDS = 180
# An instance's SSM agent usually registers within a minute or two of launch.
AGENT_GRACE_SECONDS = 600
AGENT_NOT_REGISTERED = "InvalidInstanceId"


@dataclass(frozen=True)
class PushRules:
    log_group: str  # where the LBs' SSM Agent sends a push's output: named in its failure


def overdue(command: Push, *, now: float) -> bool:
    """Still pending or in progress past the step's timeout: it will not finish."""
    return command.in_flight and now - command.requested_at > STEP_TIMEOUT_SECONDS


def agent_missing_is_news(launch_time: float, *, now: float) -> bool:
    """The agent is still unknown to SSM this long after launch: no longer a boot in progress."""
    return now - launch_time > AGENT_GRACE_SECONDS
