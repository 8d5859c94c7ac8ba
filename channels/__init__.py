"""The platform adapters: web chat (`webchat`), SMS through Twilio (`sms`) and the agents' Slack
workspace (`slack`). Each verifies what reaches it, translates it to `bot.messages` shapes and back,
and sends; none touches the database, the KB or handoff logic. `base` holds the `Channel` contract.

Imports from `bot`: `bot.messages` only (import contract in pyproject.toml).
"""
