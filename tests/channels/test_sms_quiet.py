"""Quiet hours for proactive texts, in the customer's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels.sms_quiet import in_quiet_hours, next_allowed_send, resolve_tz

NIGHT = (time(21, 0), time(8, 0))  # wraps past midnight


@pytest.mark.parametrize(
    ("now", "tz", "expected"),
    [
        # 22:00 in New York (EST, UTC-5): wait for 08:00 local the next day = 13:00 UTC.
        (
            datetime(2024, 1, 10, 3, 0, tzinfo=UTC),
            "America/New_York",
            datetime(2024, 1, 10, 13, 0, tzinfo=UTC),
        ),
        # 06:30 local: later the same morning.
        (
            datetime(2024, 1, 10, 11, 30, tzinfo=UTC),
            "America/New_York",
            datetime(2024, 1, 10, 13, 0, tzinfo=UTC),
        ),
        # 12:00 local: send now.
        (
            datetime(2024, 1, 10, 17, 0, tzinfo=UTC),
            "America/New_York",
            datetime(2024, 1, 10, 17, 0, tzinfo=UTC),
        ),
        # The same instant is daytime in Tokyo.
        (datetime(2024, 1, 10, 3, 0, tzinfo=UTC), "Asia/Tokyo", datetime(2024, 1, 10, 3, 0, tzinfo=UTC)),
        # Summer time: 08:00 EDT is 12:00 UTC.
        (
            datetime(2024, 7, 10, 3, 0, tzinfo=UTC),
            "America/New_York",
            datetime(2024, 7, 10, 12, 0, tzinfo=UTC),
        ),
        # The night the clocks go forward (10 March 2024): 23:00 EST -> 08:00 EDT = 12:00 UTC.
        (
            datetime(2024, 3, 10, 4, 0, tzinfo=UTC),
            "America/New_York",
            datetime(2024, 3, 10, 12, 0, tzinfo=UTC),
        ),
        # Unknown or missing zone: the default (UTC).
        (datetime(2024, 1, 10, 23, 0, tzinfo=UTC), "Not/AZone", datetime(2024, 1, 11, 8, 0, tzinfo=UTC)),
        (datetime(2024, 1, 10, 23, 0, tzinfo=UTC), None, datetime(2024, 1, 11, 8, 0, tzinfo=UTC)),
    ],
)
def test_examples(now: datetime, tz: str | None, expected: datetime) -> None:
    assert next_allowed_send(now, tz, *NIGHT) == expected


def test_a_window_within_one_day_and_no_window() -> None:
    lunch = (time(12, 0), time(13, 30))
    assert next_allowed_send(datetime(2024, 5, 1, 12, 15, tzinfo=UTC), "UTC", *lunch) == datetime(
        2024, 5, 1, 13, 30, tzinfo=UTC
    )
    now = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
    assert next_allowed_send(now, "UTC", time(9), time(9)) == now


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_allowed_send(datetime(2024, 1, 1, 12, 0), "UTC", *NIGHT)


def test_an_end_inside_a_dst_gap_moves_forward_by_the_gap() -> None:
    # 10 March 2024, New York: 02:00-03:00 does not exist. Quiet until 02:30 -> 03:30 EDT.
    now = datetime(2024, 3, 10, 6, 0, tzinfo=UTC)  # 01:00 EST
    result = next_allowed_send(now, "America/New_York", time(22), time(2, 30))
    assert result == datetime(2024, 3, 10, 7, 30, tzinfo=UTC)
    assert not in_quiet_hours(result.astimezone(ZoneInfo("America/New_York")).time(), time(22), time(2, 30))


ZONES = st.sampled_from(
    [
        "UTC",
        "America/New_York",
        "Europe/London",
        "Australia/Lord_Howe",
        "Asia/Kolkata",
        "Pacific/Chatham",
        "America/Santiago",
    ]
)
TIMES = st.times().map(lambda t: t.replace(second=0, microsecond=0))
NOW = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC))


@given(NOW, ZONES, TIMES, TIMES)
def test_result_is_never_early_and_never_in_quiet_hours(
    now: datetime, tz: str, start: time, end: time
) -> None:
    result = next_allowed_send(now, tz, start, end)
    assert result.tzinfo is not None and result >= now
    local = result.astimezone(ZoneInfo(tz)).time().replace(tzinfo=None)
    assert not in_quiet_hours(local, start, end)
    if not in_quiet_hours(now.astimezone(ZoneInfo(tz)).time(), start, end):
        assert result == now
    assert result - now <= timedelta(hours=26)


@given(NOW, st.integers(min_value=-14 * 60, max_value=14 * 60), TIMES, TIMES)
def test_in_a_fixed_offset_zone_the_result_is_the_earliest_allowed_minute(
    now: datetime, offset_minutes: int, start: time, end: time
) -> None:
    tz = timezone(timedelta(minutes=offset_minutes))
    result = next_allowed_send(now, tz, start, end)
    if result > now:
        just_before = max(now, result - timedelta(minutes=1))
        assert in_quiet_hours(just_before.astimezone(tz).time(), start, end)


def test_resolve_tz_accepts_tzinfo_and_names() -> None:
    assert resolve_tz(UTC) is UTC
    assert resolve_tz("Europe/Paris") == ZoneInfo("Europe/Paris")
    assert resolve_tz("", default="Asia/Tokyo") == ZoneInfo("Asia/Tokyo")
