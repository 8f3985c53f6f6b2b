"""Weekly hours on the clock of a time zone: a rep's shift, a team's business hours, an
on-call window. Pure functions of the hours and a time passed in.

Hours are days of the week with a start and an end, in a time zone. `start` = `end`
means around the clock on those days; an `end` before `start` is a night shift, which
belongs to the day it starts on.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from routing.roster import Hours, weekday

#: How far ahead `next_start` looks: a week and a day covers every weekly pattern.
LOOK_AHEAD_DAYS = 8


def within(hours: Hours, zone: str, now: datetime) -> bool:
    """Whether `now` falls within `hours` on the clock of `zone`."""
    local = now.astimezone(ZoneInfo(zone))
    clock: time = local.time().replace(tzinfo=None)
    if hours.start == hours.end:
        return weekday(local.date()) in hours.days
    if hours.start < hours.end:
        return weekday(local.date()) in hours.days and hours.start <= clock < hours.end
    if clock >= hours.start:
        return weekday(local.date()) in hours.days
    return clock < hours.end and weekday(local.date() - timedelta(days=1)) in hours.days


def next_start(hours: Hours, zone: str, after: datetime) -> datetime | None:
    """The first time after `after` that `hours` start, within `LOOK_AHEAD_DAYS`; None if
    they name no day."""
    tz = ZoneInfo(zone)
    today = after.astimezone(tz).date()
    for ahead in range(LOOK_AHEAD_DAYS):
        day = today + timedelta(days=ahead)
        if weekday(day) not in hours.days:
            continue
        start = datetime.combine(day, hours.start, tz)
        if start > after:
            return start
    return None


def add_working_time(hours: Hours, zone: str, start: datetime, seconds: float) -> datetime:
    """The moment `seconds` of time within `hours` have passed since `start`: 24 business
    hours from Friday 17:00 on 09:00-18:00 weekdays end on Wednesday 14:00."""
    tz = ZoneInfo(zone)
    left = seconds
    moment = start.astimezone(tz)
    for _ in range(LOOK_AHEAD_DAYS * max(1, int(seconds // 3600) + 1)):
        opened, closed = _span_around(hours, tz, moment)
        if opened is not None and closed is not None:
            # Elapsed time, not wall-clock time: a day of daylight saving has 23 or 25 h.
            available = closed.timestamp() - moment.timestamp()
            if left <= available:
                return datetime.fromtimestamp(moment.timestamp() + left, UTC)
            left -= available
            moment = closed
        else:
            upcoming = next_start(hours, zone, moment)
            if upcoming is None:
                return start + timedelta(seconds=seconds)  # no working days: clock time
            moment = upcoming
    return start + timedelta(seconds=seconds)


def _span_around(hours: Hours, tz: ZoneInfo, moment: datetime
                 ) -> tuple[datetime | None, datetime | None]:
    """The span of `hours` that `moment` falls in, as (its start, its end), else Nones."""
    if not within(hours, str(tz), moment):
        return None, None
    local = moment.astimezone(tz)
    day = local.date()
    if hours.start == hours.end:
        return local, datetime.combine(day + timedelta(days=1), time(0), tz)
    if hours.start < hours.end:
        return local, datetime.combine(day, hours.end, tz)
    if local.time().replace(tzinfo=None) >= hours.start:
        return local, datetime.combine(day + timedelta(days=1), hours.end, tz)
    return local, datetime.combine(day, hours.end, tz)
