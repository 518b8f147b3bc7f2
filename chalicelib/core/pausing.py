"""What `<prefix>/paused` means (SPEC "Pausing"), and how a paused controller says so.

Pure. Absent or `false` (any case): not paused. `true` (any case): paused. Anything else is taken
as paused too: someone wrote the parameter meaning to pause (`ture`, `yes`, `1`), and running on
through their maintenance would be the worse mistake. That value is shown by `status` and told in
a notice, once, so that a typo does not leave the controller paused unnoticed for good.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.core.model import World
from chalicelib.core.names import show

# The condition of a value that is neither true nor false; one key whatever the value, so a paused
# controller tells it once until the parameter is corrected (or removed).
UNCLEAR = "paused-unclear"
# How much of a found value is shown: the parameter holds up to 4 KB of anything.
_SHOWN_CHARS = 40


@dataclass(frozen=True)
class Pause:
    paused: bool
    unclear: str | None = None  # the value found when it is neither true nor false


def read(raw: str | None) -> Pause:
    """The parameter's value as read (None: absent)."""
    if raw is None:
        return Pause(paused=False)
    word = raw.strip().lower()
    if word == "false":
        return Pause(paused=False)
    if word == "true":
        return Pause(paused=True)
    return Pause(paused=True, unclear=raw)


def describe(world: World, parameter: str) -> str:
    """Why a paused run changes nothing, in an operator's words (empty when not paused)."""
    if not world.paused:
        return ""
    if world.paused_unclear is None:
        return f"{parameter} is true"
    return (
        f"{parameter} holds {show(world.paused_unclear, _SHOWN_CHARS)}, neither true nor false: "
        "taken as paused (write true to pause, false or delete it to resume)"
    )


def conditions(world: World, parameter: str) -> dict[str, str]:
    """The notice of an unclear value, while it lasts."""
    if not world.paused or world.paused_unclear is None:
        return {}
    return {UNCLEAR: f"controller paused: {describe(world, parameter)}"}
