"""SLA timers in business hours: first-response and resolution targets per priority. Pure functions.

The clocks start at the handoff (`Conversation.handed_off_at`); the first response is met by
`first_human_response_at`, the resolution by `resolved_at`. Targets count business time
(configurable weekdays, hours, holidays and time zone), except for the priorities listed in
`around_the_clock` (by default "urgent"), which count wall-clock time.

    policy = SLAPolicy.from_spec(hours="mon-fri 09:00-17:00", timezone="Europe/London",
                                 targets="urgent=15m/4h,high=1h/8h,normal=4h/24h,low=8h/72h")
    status = compute_sla(priority="high", started_at=conv.handed_off_at,
                         first_response_at=conv.first_human_response_at, resolved_at=conv.resolved_at,
                         now=utcnow(), policy=policy)
    status.first_response.due_at, status.breached, status.next_due
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from handoff.errors import SLAConfigError

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_DAYS_SEARCHED = 3700  # ten years: a calendar with no open day at all is a configuration error
DEFAULT_TARGETS = "urgent=15m/4h,high=1h/8h,normal=4h/24h,low=8h/72h"


# ---- configuration ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BusinessHours:
    """Open `start_minute`..`end_minute` (minutes after local midnight; 1440 = midnight) on `weekdays`
    (0 = Monday), in `timezone`, except on `holidays`. `always_open` ignores all of that (24/7)."""

    timezone: str = "UTC"
    weekdays: frozenset[int] = frozenset(range(5))
    start_minute: int = 9 * 60
    end_minute: int = 17 * 60
    holidays: frozenset[date] = frozenset()
    always_open: bool = False

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SLAConfigError("timezone", self.timezone, "unknown time zone") from exc
        if self.always_open:
            return
        if not self.weekdays or not self.weekdays <= frozenset(range(7)):
            raise SLAConfigError("weekdays", sorted(self.weekdays), "at least one day, 0 (Mon) .. 6 (Sun)")
        if not 0 <= self.start_minute < self.end_minute <= 24 * 60:
            raise SLAConfigError(
                "hours", (self.start_minute, self.end_minute), "need 00:00 <= start < end <= 24:00"
            )

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def parse(cls, spec: str, *, timezone: str = "UTC", holidays: Iterable[date] = ()) -> BusinessHours:
        """'mon-fri 09:00-17:00', 'mon,wed,fri 08:30-12:00', 'sun-thu 00:00-24:00' or '24/7'."""
        spec = spec.strip().lower()
        if spec in ("24/7", "always", "24x7"):
            return cls(timezone=timezone, always_open=True, holidays=frozenset(holidays))
        m = re.fullmatch(r"([a-z,\- ]+?)\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})", spec)
        if not m:
            raise SLAConfigError("business_hours", spec, "expected e.g. 'mon-fri 09:00-17:00' or '24/7'")
        days = _parse_days(m.group(1))
        start = int(m.group(2)) * 60 + int(m.group(3))
        end = int(m.group(4)) * 60 + int(m.group(5))
        return cls(
            timezone=timezone, weekdays=days, start_minute=start, end_minute=end, holidays=frozenset(holidays)
        )

    def window(self, day: date) -> tuple[datetime, datetime] | None:
        """The UTC open..close of a local calendar day, or None when closed all day."""
        if self.always_open:
            start = datetime(day.year, day.month, day.day, tzinfo=self.tz)
            end_day = day + timedelta(days=1)
            return start.astimezone(UTC), datetime(
                end_day.year, end_day.month, end_day.day, tzinfo=self.tz
            ).astimezone(UTC)
        if day.weekday() not in self.weekdays or day in self.holidays:
            return None
        return self._at(day, self.start_minute), self._at(day, self.end_minute)

    def _at(self, day: date, minute: int) -> datetime:
        if minute == 24 * 60:
            day, minute = day + timedelta(days=1), 0
        local = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=self.tz)
        return local.astimezone(UTC)


def _parse_days(text: str) -> frozenset[int]:
    days: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        first, _, last = part.partition("-")
        try:
            a = DAY_NAMES.index(first.strip()[:3])
            b = DAY_NAMES.index(last.strip()[:3]) if last else a
        except ValueError as exc:
            raise SLAConfigError("business_hours", text, f"unknown day in {part!r}") from exc
        i = a
        while True:  # ranges may wrap: "sat-mon"
            days.add(i)
            if i == b:
                break
            i = (i + 1) % 7
    return frozenset(days)


def parse_holidays(text: str) -> frozenset[date]:
    """'2026-12-25, 2026-12-26,2027-01-01' -> those dates (closed all day in the business calendar)."""
    out: set[date] = set()
    for part in (p.strip() for p in text.replace(";", ",").split(",")):
        if not part:
            continue
        try:
            out.add(date.fromisoformat(part))
        except ValueError as exc:
            raise SLAConfigError("holidays", part, "expected dates like 2026-12-25, comma-separated") from exc
    return frozenset(out)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def human_duration(seconds: float) -> str:
    """3725 -> '1 h 2 min'; 90000 -> '1 d 1 h'; 40 -> '40 s' (two largest units). The one duration
    formatter (SLA pages, reports, the context package's waiting time)."""
    s = int(abs(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            parts.append(f"{s // size} {unit}")
            s %= size
    if not parts:
        return f"{s} s"
    return " ".join(parts[:2])


def parse_duration(text: str) -> float:
    """'15m' -> 900.0, '1h30m' -> 5400.0, '2d' -> 172800.0 (seconds)."""
    cleaned = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(cleaned)
    if not parts or "".join(f"{n}{u}" for n, u in parts) != cleaned:
        raise SLAConfigError("duration", text, "expected e.g. '15m', '4h', '1h30m', '2d'")
    return sum(float(n) * _UNIT[u] for n, u in parts)


@dataclass(frozen=True)
class SLATarget:
    first_response_seconds: float
    resolution_seconds: float


@dataclass(frozen=True)
class SLAPolicy:
    targets: Mapping[str, SLATarget]
    hours: BusinessHours = field(default_factory=BusinessHours)
    around_the_clock: frozenset[str] = frozenset({"urgent"})

    @classmethod
    def from_spec(
        cls,
        *,
        hours: str = "mon-fri 09:00-17:00",
        timezone: str = "UTC",
        targets: str = DEFAULT_TARGETS,
        around_the_clock: str = "urgent",
        holidays: Iterable[date] = (),
    ) -> SLAPolicy:
        """`targets`: 'priority=first/resolution,...' with durations like 15m, 4h, 2d."""
        parsed: dict[str, SLATarget] = {}
        for item in (i.strip() for i in targets.split(",") if i.strip()):
            name, eq, value = item.partition("=")
            first, slash, resolution = value.partition("/")
            if not eq or not slash:
                raise SLAConfigError("targets", item, "expected 'priority=first_response/resolution'")
            parsed[name.strip()] = SLATarget(parse_duration(first), parse_duration(resolution))
        return cls(
            targets=parsed,
            hours=BusinessHours.parse(hours, timezone=timezone, holidays=holidays),
            around_the_clock=frozenset(p.strip() for p in around_the_clock.split(",") if p.strip()),
        )

    @classmethod
    def from_settings(cls, settings: Any) -> SLAPolicy:
        return cls.from_spec(
            hours=settings.sla_business_hours,
            timezone=settings.sla_timezone,
            targets=settings.sla_targets,
            around_the_clock=settings.sla_around_the_clock,
            holidays=parse_holidays(getattr(settings, "sla_holidays", "") or ""),
        )

    def target(self, priority: str) -> SLATarget:
        if priority in self.targets:
            return self.targets[priority]
        if "normal" in self.targets:
            return self.targets["normal"]
        raise SLAConfigError("targets", priority, "no target for this priority and no 'normal' fallback")

    def hours_for(self, priority: str) -> BusinessHours:
        if priority in self.around_the_clock:
            return BusinessHours(timezone=self.hours.timezone, always_open=True)
        return self.hours


# ---- business-time arithmetic -----------------------------------------------------------------------------


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def add_business_time(start: datetime, seconds: float, hours: BusinessHours) -> datetime:
    """The moment `seconds` of open time after `start` have elapsed (UTC)."""
    current = _aware(start)
    if hours.always_open:
        return current + timedelta(seconds=seconds)
    left = timedelta(seconds=seconds)
    day = current.astimezone(hours.tz).date()
    for _ in range(MAX_DAYS_SEARCHED):
        window = hours.window(day)
        day += timedelta(days=1)
        if window is None or window[1] <= current:
            continue
        opens, closes = window
        current = max(current, opens)
        if current + left <= closes:
            return current + left
        left -= closes - current
        current = closes
    raise SLAConfigError("business_hours", hours, f"no open time within {MAX_DAYS_SEARCHED} days")


def business_seconds_between(start: datetime, end: datetime, hours: BusinessHours) -> float:
    """Open time between two moments, in seconds (0 if end <= start)."""
    start, end = _aware(start), _aware(end)
    if end <= start:
        return 0.0
    if hours.always_open:
        return (end - start).total_seconds()
    total = 0.0
    day = start.astimezone(hours.tz).date()
    last = end.astimezone(hours.tz).date()
    while day <= last:
        window = hours.window(day)
        if window is not None:
            lo, hi = max(start, window[0]), min(end, window[1])
            if hi > lo:
                total += (hi - lo).total_seconds()
        day += timedelta(days=1)
    return total


# ---- status ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SLAClock:
    name: Literal["first_response", "resolution"]
    due_at: datetime
    met_at: datetime | None
    breached: bool  # met late, or not met and already past due
    remaining_seconds: float  # wall-clock seconds until due (negative when overdue); 0 once met

    @property
    def running(self) -> bool:
        return self.met_at is None


@dataclass(frozen=True)
class SLAStatus:
    priority: str
    started_at: datetime
    first_response: SLAClock
    resolution: SLAClock

    @property
    def breached(self) -> bool:
        return self.first_response.breached or self.resolution.breached

    @property
    def next_due(self) -> SLAClock | None:
        """The running clock that is due soonest (None when both are met)."""
        running = [c for c in (self.first_response, self.resolution) if c.running]
        return min(running, key=lambda c: c.due_at) if running else None


def _clock(
    name: Literal["first_response", "resolution"], due: datetime, met: datetime | None, now: datetime
) -> SLAClock:
    met = _aware(met) if met is not None else None
    breached = (met or now) > due
    remaining = 0.0 if met is not None else (due - now).total_seconds()
    return SLAClock(name=name, due_at=due, met_at=met, breached=breached, remaining_seconds=remaining)


def compute_sla(
    *,
    priority: str,
    started_at: datetime,
    first_response_at: datetime | None,
    resolved_at: datetime | None,
    now: datetime,
    policy: SLAPolicy,
) -> SLAStatus:
    """Due times and breach status of both clocks for one conversation."""
    started, now = _aware(started_at), _aware(now)
    target = policy.target(priority)
    hours = policy.hours_for(priority)
    return SLAStatus(
        priority=priority,
        started_at=started,
        first_response=_clock(
            "first_response",
            add_business_time(started, target.first_response_seconds, hours),
            first_response_at,
            now,
        ),
        resolution=_clock(
            "resolution", add_business_time(started, target.resolution_seconds, hours), resolved_at, now
        ),
    )


def sla_for_conversation(conversation: Any, *, policy: SLAPolicy, now: datetime) -> SLAStatus | None:
    """`compute_sla` from a `bot.models.Conversation` (None before any handoff)."""
    if conversation.handed_off_at is None:
        return None
    return compute_sla(
        priority=conversation.priority or "normal",
        started_at=conversation.handed_off_at,
        first_response_at=conversation.first_human_response_at,
        resolved_at=conversation.resolved_at,
        now=now,
        policy=policy,
    )
