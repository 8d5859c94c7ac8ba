"""The application: settings, storage, the conversation pipeline, outbound delivery, CLI.

`bot` wires `channels`, `kb_index` and `handoff` together; only `bot/app.py` imports all four.
Nothing in `channels`, `kb_index` or `handoff` imports `bot`'s pipeline (they may use
`bot.messages` and `bot.db.Base`).
"""
