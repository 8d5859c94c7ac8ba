"""SLA_HOLIDAYS: parsed from the setting, honoured by the business-hours maths (minute-by-minute oracle)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.settings import Settings
from handoff.errors import SLAConfigError
from handoff.sla import SLAPolicy, add_business_time, business_seconds_between, compute_sla, parse_holidays
from tests.handoff.test_sla import oracle_open_minutes


def test_parse_holidays() -> None:
    assert parse_holidays("") == frozenset()
    assert parse_holidays(" 2026-12-25, 2026-12-26;2027-01-01 ,") == {
        date(2026, 12, 25), date(2026, 12, 26), date(2027, 1, 1)}
    with pytest.raises(SLAConfigError, match="2026-13-01"):
        parse_holidays("2026-12-25,2026-13-01")


def test_policy_from_settings_closes_the_holidays(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(sla_holidays="2026-12-24,2026-12-25", sla_timezone="Europe/London")
    policy = SLAPolicy.from_settings(settings)
    assert policy.hours.holidays == {date(2026, 12, 24), date(2026, 12, 25)}
    # Wed 23 Dec 16:00 London + 4 business hours: 1 h on Wednesday, then Thu/Fri are closed, Mon 28 12:00.
    start = datetime(2026, 12, 23, 16, tzinfo=UTC)
    status = compute_sla(priority="normal", started_at=start, first_response_at=None, resolved_at=None,
                         now=start, policy=policy)
    assert status.first_response.due_at == datetime(2026, 12, 28, 12, tzinfo=UTC)
    # urgent is around the clock: holidays do not stop it
    urgent = compute_sla(priority="urgent", started_at=start, first_response_at=None, resolved_at=None,
                         now=start, policy=policy)
    assert urgent.first_response.due_at == start + timedelta(minutes=15)


@pytest.mark.parametrize("timezone", ["UTC", "America/Los_Angeles"])
def test_holidays_from_settings_match_the_oracle(settings_factory: Callable[..., Settings], timezone: str) -> None:
    settings = settings_factory(sla_holidays="2026-11-26,2026-11-27", sla_timezone=timezone,
                                sla_business_hours="mon-fri 08:00-18:00")
    hours = SLAPolicy.from_settings(settings).hours
    rng = random.Random(11)
    base = datetime(2026, 11, 23, tzinfo=UTC)
    for _ in range(10):
        start = base + timedelta(minutes=rng.randrange(0, 8 * 24 * 60))
        seconds = rng.randrange(1, 25 * 60) * 60
        due = add_business_time(start, seconds, hours)
        assert oracle_open_minutes(start, due, hours) * 60 == seconds
        assert business_seconds_between(start, due, hours) == seconds
        assert oracle_open_minutes(start, due - timedelta(minutes=1), hours) * 60 < seconds
