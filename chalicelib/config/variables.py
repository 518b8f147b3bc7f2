"""The SPEC's table of variables: the only names the `LBF_` prefix may carry.

Any other name with that prefix, in any case, is refused before anything else, naming the closest
known name: a misspelt safety switch (`LBF_DRYRUN`) silently ignored would do the opposite of what
was meant. The table's names for a later release are validated already, so that a value set now is
not a surprise when they are used.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping

from chalicelib.config.reading import ConfigError, seconds, shown
from chalicelib.core.timing import SCHEDULE_SECONDS

# The SPEC's table ("Configuration"), in its order: the only names the `LBF_` prefix may carry.
KNOWN_VARIABLES: frozenset[str] = frozenset(
    {
        "LBF_CLUSTER",
        "LBF_DOMAIN",
        "LBF_HOSTED_ZONE_ID",
        "LBF_ACTIVE_NAME",
        "LBF_TTL",
        "LBF_MODE",
        "LBF_EIP_ALLOCATION_ID",
        "LBF_LB_ADDRESS",
        "LBF_POOL_ADDRESS",
        "LBF_LB_CHECK",
        "LBF_POOL_CHECK",
        "LBF_POOL_PORT",
        "LBF_PROBE_TIMEOUT",
        "LBF_PROBE_INTERVAL",
        "LBF_PROBE_ROUNDS",
        "LBF_POOL_INTERVAL",
        "LBF_RISE",
        "LBF_FALL",
        "LBF_SSM_DOCUMENT",
        "LBF_PARAMETER_PREFIX",
        "LBF_SNS_TOPIC_ARN",
        "LBF_DRY_RUN",
        "LBF_MAX_POOL_DROP",
        "LBF_ACTIVE_MODE",
        "LBF_LB_MIN_BACKENDS",
        "LBF_PROBER_FAULT_PERCENT",
        "LBF_ROUTE53_HEALTH_CHECKS",
        "LBF_DNS_FAILOVER",
        "LBF_ROUTE53_INTERVAL",
        "LBF_PROBER_FUNCTION",
    }
)
_PREFIX = "LBF_"
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")


def refuse_unknown_names(environ: Mapping[str, str]) -> None:
    """ConfigError for the first unknown `LBF_` name (sorted), naming the closest known one."""
    # Any case: `lbf_dry_run=true` is the same mistake as `LBF_DRYRUN=true`, and as easily made.
    unknown = sorted(
        name for name in environ if name.upper().startswith(_PREFIX) and name not in KNOWN_VARIABLES
    )
    if not unknown:
        return
    name = unknown[0]
    # Compared without the prefix every name shares, which would make any two names look alike.
    suffixes = {known.removeprefix(_PREFIX): known for known in KNOWN_VARIABLES}
    typed = name.upper().removeprefix(_PREFIX)
    close = difflib.get_close_matches(typed, sorted(suffixes), n=1, cutoff=0.6)
    hint = f"; did you mean {suffixes[close[0]]}?" if close else ""
    # A name is as untrusted as a value: anything odd in it is escaped before it reaches a log.
    displayed = name if _PLAIN_NAME.fullmatch(name) else shown(name)
    raise ConfigError(
        displayed, f"not a known setting (the {_PREFIX} prefix is reserved for lb-failover's){hint}"
    )


def reserved_for_later(environ: Mapping[str, str]) -> None:
    """The table's name for the pool's interval, not used yet: validated so that a value set now
    is not a surprise when it is."""
    seconds(environ, "LBF_POOL_INTERVAL", 10.0, high=SCHEDULE_SECONDS)
