"""What `<prefix>/paused` means (SPEC "Pausing"). Pure.

Absent or `false` (any case): not paused. `true` (any case): paused. Anything else was written by
someone who meant to pause (a typo, `yes`, `1`): paused too, and the value is shown and notified,
so that an odd value never silently lets the controller act.
"""

from __future__ import annotations

CONDITION = "paused-value"


def is_paused(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "false")


def odd_value(value: str | None) -> str | None:
    """The stored value when it is neither true nor false (nor absent), else None."""
    if value is None or value.strip().lower() in ("true", "false", ""):
        return None
    return value
