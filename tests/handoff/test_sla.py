"""Business hours and SLA clocks, checked against a brute-force minute-by-minute oracle."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest

from handoff.errors import HandoffError, SLAConfigError
from handoff.sla import (
    BusinessHours,
    SLAPolicy,
    SLATarget,
    add_business_time,
    business_seconds_between,
    compute_sla,
    parse_duration,
    sla_for_conversation,
)

# 2025-03-03 is a Monday
MON = datetime(2025, 3, 3, tzinfo=UTC)


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return MON + timedelta(days=day, hours=hour, minutes=minute)


def oracle_open_minutes(start: datetime, end: datetime, hours: BusinessHours) -> int:
    """Count open minutes one by one (slow, obviously right)."""
    n, t = 0, start
    while t < end:
        local = t.astimezone(hours.tz)
        minute = local.hour * 60 + local.minute
        if hours.always_open or (
            local.weekday() in hours.weekdays
            and local.date() not in hours.holidays
            and hours.start_minute <= minute < hours.end_minute
        ):
            n += 1
        t += timedelta(minutes=1)
    return n


def test_parse_business_hours() -> None:
    h = BusinessHours.parse("Mon-Fri 09:00-17:30", timezone="Europe/Lisbon")
    assert (h.weekdays, h.start_minute, h.end_minute, h.timezone) == (
        frozenset(range(5)),
        540,
        1050,
        "Europe/Lisbon",
    )
    assert BusinessHours.parse("sat-mon 00:00-24:00").weekdays == frozenset({5, 6, 0})
    assert BusinessHours.parse("mon,wed, fri 8:00-12:00").weekdays == frozenset({0, 2, 4})
    assert BusinessHours.parse("24/7").always_open


@pytest.mark.parametrize(
    ("spec", "timezone"),
    [
        ("mon-fri 17:00-09:00", "UTC"),
        ("funday 09:00-17:00", "UTC"),
        ("whenever", "UTC"),
        ("mon-fri 09:00-17:00", "Mars/Olympus"),
        ("mon 09:00-25:00", "UTC"),
    ],
)
def test_bad_business_hours_are_refused(spec: str, timezone: str) -> None:
    with pytest.raises(SLAConfigError) as info:
        BusinessHours.parse(spec, timezone=timezone)
    assert isinstance(info.value, HandoffError) and info.value.field in (
        "business_hours",
        "hours",
        "timezone",
    )


def test_parse_duration() -> None:
    assert parse_duration("15m") == 900 and parse_duration("1h30m") == 5400 and parse_duration("2d") == 172800
    for bad in ("", "15", "15x", "h1"):
        with pytest.raises(SLAConfigError):
            parse_duration(bad)


def test_add_business_time_rolls_over_nights_weekends_and_holidays() -> None:
    h = BusinessHours(holidays=frozenset({date(2025, 3, 10)}))  # the next Monday is a holiday
    assert add_business_time(utc(0, 10), 3600, h) == utc(0, 11)  # inside the day
    assert add_business_time(utc(0, 7), 3600, h) == utc(0, 10)  # before opening
    assert add_business_time(utc(0, 16, 30), 3600, h) == utc(1, 9, 30)  # over the night
    assert add_business_time(utc(4, 16), 2 * 3600, h) == utc(8, 10)  # Friday -> Tuesday (holiday Monday)
    assert add_business_time(utc(5, 12), 60, h) == utc(8, 9, 1)  # Saturday -> Tuesday


def test_add_business_time_across_a_dst_change() -> None:
    # London moves to BST on Sunday 2025-03-30: 09:00 local is 09:00 UTC on Friday, 08:00 UTC on Monday
    h = BusinessHours(timezone="Europe/London")
    friday_4pm = datetime(2025, 3, 28, 16, tzinfo=UTC)
    assert add_business_time(friday_4pm, 2 * 3600, h) == datetime(2025, 3, 31, 9, tzinfo=UTC)


@pytest.mark.parametrize("timezone", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_business_time_matches_a_brute_force_oracle(timezone: str) -> None:
    rng = random.Random(7)
    h = BusinessHours(
        timezone=timezone,
        weekdays=frozenset({0, 1, 2, 3, 5}),
        start_minute=8 * 60 + 30,
        end_minute=18 * 60,
        holidays=frozenset({date(2025, 3, 5)}),
    )
    for _ in range(12):
        start = MON + timedelta(minutes=rng.randrange(0, 9 * 24 * 60))
        seconds = rng.randrange(1, 20 * 60) * 60
        due = add_business_time(start, seconds, h)
        assert oracle_open_minutes(start, due, h) * 60 == seconds
        assert business_seconds_between(start, due, h) == seconds
        # and it is the earliest such moment: one minute earlier is not enough
        assert oracle_open_minutes(start, due - timedelta(minutes=1), h) * 60 < seconds


def test_business_seconds_between_edges() -> None:
    h = BusinessHours()
    assert business_seconds_between(utc(0, 12), utc(0, 11), h) == 0.0
    assert business_seconds_between(utc(4, 16), utc(7, 10), h) == 2 * 3600  # Fri 16-17 + Mon 9-10
    assert business_seconds_between(utc(0, 0), utc(0, 0, 30), BusinessHours(always_open=True)) == 1800


POLICY = SLAPolicy.from_spec(hours="mon-fri 09:00-17:00", targets="urgent=15m/4h,high=1h/8h,normal=4h/24h")


def test_clocks_running_met_and_breached() -> None:
    status = compute_sla(
        priority="high",
        started_at=utc(0, 16, 30),
        first_response_at=None,
        resolved_at=None,
        now=utc(0, 16, 45),
        policy=POLICY,
    )
    assert status.first_response.due_at == utc(1, 9, 30)  # 30 min today + 30 min tomorrow
    assert status.resolution.due_at == utc(1, 16, 30)
    assert not status.breached and status.next_due is status.first_response
    assert status.first_response.remaining_seconds == (utc(1, 9, 30) - utc(0, 16, 45)).total_seconds()

    late = compute_sla(
        priority="high",
        started_at=utc(0, 16, 30),
        first_response_at=utc(1, 9, 45),
        resolved_at=None,
        now=utc(1, 10),
        policy=POLICY,
    )
    assert late.first_response.breached and late.first_response.met_at == utc(1, 9, 45)
    assert late.first_response.remaining_seconds == 0.0 and late.breached
    assert late.next_due is late.resolution

    overdue = compute_sla(
        priority="high",
        started_at=utc(0, 10),
        first_response_at=None,
        resolved_at=None,
        now=utc(0, 11, 30),
        policy=POLICY,
    )
    assert overdue.first_response.breached and overdue.first_response.remaining_seconds == -1800

    done = compute_sla(
        priority="high",
        started_at=utc(0, 10),
        first_response_at=utc(0, 10, 5),
        resolved_at=utc(0, 12),
        now=utc(3, 0),
        policy=POLICY,
    )
    assert not done.breached and done.next_due is None


def test_urgent_counts_around_the_clock_and_unknown_priorities_fall_back_to_normal() -> None:
    saturday_night = utc(5, 23)
    urgent = compute_sla(
        priority="urgent",
        started_at=saturday_night,
        first_response_at=None,
        resolved_at=None,
        now=saturday_night,
        policy=POLICY,
    )
    assert urgent.first_response.due_at == saturday_night + timedelta(minutes=15)
    low = compute_sla(
        priority="low",
        started_at=saturday_night,
        first_response_at=None,
        resolved_at=None,
        now=saturday_night,
        policy=POLICY,
    )
    assert low.first_response.due_at == utc(7, 13)  # normal: 4 business hours from Monday 09:00
    with pytest.raises(SLAConfigError):
        SLAPolicy(targets={"high": SLATarget(60, 60)}).target("low")


def test_sla_for_a_conversation_and_from_settings(settings_factory) -> None:  # type: ignore[no-untyped-def]
    conv = SimpleNamespace(
        handed_off_at=None, priority="normal", first_human_response_at=None, resolved_at=None
    )
    assert sla_for_conversation(conv, policy=POLICY, now=utc(0, 10)) is None
    conv.handed_off_at = utc(0, 10)
    status = sla_for_conversation(conv, policy=POLICY, now=utc(0, 10))
    assert status is not None and status.first_response.due_at == utc(0, 14)
    settings = settings_factory(
        sla_business_hours="mon-sat 08:00-20:00",
        sla_timezone="Europe/Paris",
        sla_targets="normal=30m/2h",
        sla_around_the_clock="",
    )
    policy = SLAPolicy.from_settings(settings)
    assert policy.hours.weekdays == frozenset(range(6)) and policy.hours.timezone == "Europe/Paris"
    assert policy.targets == {"normal": SLATarget(1800, 7200)} and policy.around_the_clock == frozenset()


def test_bad_targets_are_refused() -> None:
    for bad in ("urgent=15m", "urgent", "urgent=15m/soon"):
        with pytest.raises(SLAConfigError):
            SLAPolicy.from_spec(targets=bad)
