"""How every variable is read, the same for each (SPEC: "Configuration"), and the one error.

- Surrounding spaces and tabs are stripped; nothing else is changed. A newline or any other control
  character anywhere in a value is an error (a value pasted with a line break is a mistake, and it
  must never reach a log line or a record unescaped).
- A required variable that is unset or empty is an error. An optional variable that is set to the
  empty string (or only spaces) is treated as unset and takes its default, because deployment
  templates commonly render an unused variable as "".
- Booleans are `true` or `false` in any case, nothing else: `yes`, `1` or `on` is a guess at intent.
- Numbers are plain: no sign, exponent, nan or inf, and within the variable's range.

Pure: the environment comes in as a mapping.
"""

from __future__ import annotations

import enum
import math
import re
import unicodedata
from collections.abc import Mapping
from typing import TypeVar

from chalicelib.core.names import show

# Shown in errors; longer values are cut so one bad variable cannot flood a log line.
_SHOWN_CHARS = 57

_WHOLE_NUMBER = re.compile(r"[0-9]{1,10}")
# Plain decimals only: no sign, exponent, nan or inf, so "1e3" cannot mean 1000 by accident.
_DECIMAL = re.compile(r"(?:[0-9]{1,6}(?:\.[0-9]{0,6})?|\.[0-9]{1,6})")
_BOOLEAN_FORM = "true or false"


class ConfigError(Exception):
    """One bad or missing variable: names it and the form it should take."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable
        self.message = message


def shown(value: str) -> str:
    """The value as it goes into an error: quoted, escaped, and cut to a readable length."""
    return show(value, _SHOWN_CHARS)


def bad(name: str, expected: str, value: str) -> ConfigError:
    return ConfigError(name, f"expected {expected}, got {shown(value)}")


def optional(environ: Mapping[str, str], name: str) -> str | None:
    """The stripped value, or None when unset or empty."""
    raw = environ.get(name)
    if raw is None:
        return None
    value = raw.strip(" \t")
    if any(unicodedata.category(char).startswith("C") for char in value):
        raise ConfigError(
            name, f"must not contain a newline or control character, got {shown(value)}"
        )
    return value or None


def required(environ: Mapping[str, str], name: str, expected: str) -> str:
    value = optional(environ, name)
    if value is None:
        raise ConfigError(name, f"required but not set; expected {expected}")
    return value


# --- generic parsers ----------------------------------------------------------------------------


def integer(
    environ: Mapping[str, str],
    name: str,
    default: int,
    low: int,
    high: int,
    *,
    unit: str = "",
) -> int:
    value = optional(environ, name)
    if value is None:
        return default
    expected = f"a whole number{' of ' + unit if unit else ''} from {low} to {high}"
    if not _WHOLE_NUMBER.fullmatch(value):
        raise bad(name, expected, value)
    number = int(value)
    if not low <= number <= high:
        raise bad(name, expected, value)
    return number


def optional_integer(environ: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    """A whole number from `low` to `high`, or None when unset (its default is derived)."""
    if optional(environ, name) is None:
        return None
    return integer(environ, name, low, low, high)


def seconds(environ: Mapping[str, str], name: str, default: float, *, high: float) -> float:
    value = optional(environ, name)
    if value is None:
        return default
    expected = f"a number of seconds above 0 and at most {high:g}, e.g. 2 or 0.5"
    if not _DECIMAL.fullmatch(value):
        raise bad(name, expected, value)
    number = float(value)
    if not (math.isfinite(number) and 0 < number <= high):
        raise bad(name, expected, value)
    return number


_Choice = TypeVar("_Choice", bound=enum.StrEnum)


def choice(
    environ: Mapping[str, str], name: str, default: _Choice, choices: tuple[_Choice, ...]
) -> _Choice:
    """One of `choices`, by its value in any case; `choices` in the order the error lists them."""
    value = optional(environ, name)
    if value is None:
        return default
    lowered = value.lower()
    for option in choices:
        if option.value == lowered:
            return option
    raise bad(name, " or ".join(option.value for option in choices), value)


def boolean(environ: Mapping[str, str], name: str, *, default: bool) -> bool:
    value = optional(environ, name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise bad(name, _BOOLEAN_FORM, value)
