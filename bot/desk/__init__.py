"""The agents' desks: what people see of a conversation and how their clicks come back.

`base` is the `Desk` protocol (the hooks every conversation move calls, inside its transaction)
and `NullDesk`. The Slack desk: `slack` (pipeline events -> Slack posts, delivered by
`slack_deliver` and `slack_notice`), `slack_actions` (clicks and thread replies -> `bot.agents`),
`slack_home` (slash command, App Home). Only `bot.app` and this package import `channels.slack*`.
"""
