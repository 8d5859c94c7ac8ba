"""Quiet hours for proactive texts (CSAT surveys, follow-ups) in the customer's time zone.

Replies to a customer who just wrote are never held back; only messages we start are.

    >>> from datetime import datetime, time, UTC
    >>> next_allowed_send(datetime(2024, 1, 10, 3, 0, tzinfo=UTC), "America/New_York", time(21), time(8))
    datetime.datetime(2024, 1, 10, 13, 0, tzinfo=datetime.timezone.utc)
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def resolve_tz(tz: str | tzinfo | None, default: str | tzinfo = "UTC") -> tzinfo:
    """A tzinfo from an IANA name (unknown or missing names fall back to `default`)."""
    for candidate in (tz, default):
        if isinstance(candidate, tzinfo):
            return candidate
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return UTC


def in_quiet_hours(local: time, quiet_start: time, quiet_end: time) -> bool:
    """Is a local wall-clock time inside [quiet_start, quiet_end)? The window may wrap past midnight."""
    if quiet_start == quiet_end:
        return False
    if quiet_start < quiet_end:
        return quiet_start <= local < quiet_end
    return local >= quiet_start or local < quiet_end


def next_allowed_send(
    now: datetime,
    tz: str | tzinfo | None,
    quiet_start: time,
    quiet_end: time,
    *,
    default_tz: str | tzinfo = "UTC",
) -> datetime:
    """The earliest moment at or after `now` (aware) outside quiet hours in `tz`, as an aware UTC datetime.

    `quiet_start == quiet_end` means no quiet hours. When `quiet_end` falls in a daylight-saving gap
    that day, the answer is moved forward by the gap (02:30 in a 02:00-03:00 gap becomes 03:30).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    zone = resolve_tz(tz, default_tz)
    now_utc = now.astimezone(UTC)
    local = now_utc.astimezone(zone)
    wall = local.time().replace(tzinfo=None)
    if not in_quiet_hours(wall, quiet_start, quiet_end):
        return now_utc
    day = local.date()
    if quiet_start > quiet_end and wall >= quiet_start:
        day += timedelta(days=1)  # the window wrapped: it ends tomorrow morning
    # fold=0: an ambiguous end (clocks go back) is its first occurrence; an end inside a
    # spring-forward gap is read with the offset before the gap, i.e. moved forward by the gap.
    end_utc = datetime.combine(day, quiet_end, tzinfo=zone).astimezone(UTC)
    return max(end_utc, now_utc)
