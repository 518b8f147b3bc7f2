"""Rise/fall damping: a verdict changes only after RISE (or FALL) equal probe results in a row.

The run of equal results is stored in the `lbf:probe` tag so that damping carries across
invocations. Counts are capped at RISE/FALL: once a verdict is settled the tag stops changing, so a
steady world writes no tag at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chalicelib.core.model import Damping, ProbeRun, Verdict

# A failure's reason after a space: printable ASCII only, as it is shown to an operator.
_PROBE_RUN = re.compile(r"(ok|fail):([0-9]{1,3})(?: ([!-~][ -~]{0,63}))?")
REASON_CHARS = 64


@dataclass(frozen=True)
class Thresholds:
    rise: int
    fall: int


def advance(
    damping: Damping, ok: bool, thresholds: Thresholds, *, detail: str | None = None
) -> Damping:
    """One probe result folded into the carried state; a failure keeps its reason (`detail`)."""
    previous = damping.run
    count = previous.count + 1 if previous is not None and previous.ok == ok else 1
    needed = thresholds.rise if ok else thresholds.fall
    reason = None if ok or detail is None else failure_reason(detail)
    run = ProbeRun(ok=ok, count=min(count, needed), reason=reason)
    verdict = damping.verdict
    if run.count >= needed:
        verdict = Verdict.HEALTHY if ok else Verdict.UNHEALTHY
    return Damping(verdict=verdict, run=run)


def down_at_once(thresholds: Thresholds) -> Damping:
    """EC2 says the instance is stopping or gone: unhealthy now, no rounds needed."""
    return Damping(verdict=Verdict.UNHEALTHY, run=ProbeRun(ok=False, count=thresholds.fall))


def failure_reason(detail: str) -> str | None:
    """A failed probe's detail as the tag carries it: a bare status code reads "HTTP 503"; any
    other text kept to printable ASCII and cut short (an OS error's text can be anything)."""
    text = f"HTTP {detail}" if detail.isascii() and detail.isdigit() else detail
    text = "".join(char if " " <= char <= "~" else "?" for char in text).strip()
    return text[:REASON_CHARS].rstrip() or None


def parse_verdict(value: str | None) -> Verdict:
    if value is None:
        return Verdict.UNKNOWN
    # Anything but the two written values (a hand edit, a typo) means: no verdict yet.
    if value == Verdict.HEALTHY.value:
        return Verdict.HEALTHY
    if value == Verdict.UNHEALTHY.value:
        return Verdict.UNHEALTHY
    return Verdict.UNKNOWN


def parse_probe_run(value: str | None) -> ProbeRun | None:
    """`ok:N` / `fail:N` / `fail:N reason`; anything else means no carried run (counting starts
    afresh)."""
    if value is None:
        return None
    match = _PROBE_RUN.fullmatch(value)
    if match is None:
        return None
    count = int(match[2])
    ok = match[1] == "ok"
    if count <= 0 or (ok and match[3] is not None):
        return None
    return ProbeRun(ok=ok, count=count, reason=match[3])
