"""Durations as people write them in rule and roster files: `30d`, `12h`, `2 weeks`."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_DURATION = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(s|secs?|seconds?|m|mins?|minutes?|h|hours?|d|days?|w|weeks?)\s*$",
    re.IGNORECASE,
)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: The longest duration a rule may give: with the latest event time accepted
#: (`leadscore.events.LATEST_TIME`), every due date stays a representable time.
MAX_DURATION_DAYS = 3650


def parse_duration(value: Any) -> float:
    """`30d`, `12h`, `2 weeks` -> seconds. Months are refused: their length is ambiguous."""
    if isinstance(value, str):
        found = _DURATION.match(value)
        if found and float(found[1]) > 0:
            unit = found[2].lower()
            seconds = float(found[1]) * _UNIT_SECONDS["m" if unit.startswith("mi") else unit[0]]
            if seconds > MAX_DURATION_DAYS * 86400:
                raise ValueError(f"the duration {value!r} is longer than the longest allowed, "
                                 f"{MAX_DURATION_DAYS}d (ten years)")
            return seconds
    raise ValueError(
        f"cannot read the duration {value!r}; write a number and a unit, like 30d, 12h or 2w"
    )


def written(seconds: float) -> str:
    """Seconds as a roster or rule file writes them (600 -> `10m`), for explanations."""
    for unit in ("w", "d", "h", "m"):
        if seconds >= _UNIT_SECONDS[unit] and seconds % _UNIT_SECONDS[unit] == 0:
            return f"{int(seconds // _UNIT_SECONDS[unit])}{unit}"
    return f"{seconds:g}s"


#: A duration field of a file model, in seconds.
Duration = Annotated[float, BeforeValidator(parse_duration)]
