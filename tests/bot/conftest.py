"""Fixtures for tests/bot: the Slack desk rig (`rig_factory`, `rig`; tests/bot/desk/slack_rig.py) for
every test that drives the desk through Slack."""

from tests.bot.desk.slack_rig import rig, rig_factory  # noqa: F401  (fixtures, found by name)
