"""The web console under /console: server-rendered pages for agents and supervisors.

    mount(app, parts)        # bot/app.py; the pages say how to create the first user until one exists

Owns its accounts (`users`), sessions and CSRF (`auth`), live updates (`live`) and pages
(`pages_*`, Jinja2 `templates/`, vendored `static/`). Its actions are the agent actions (`bot.agents`),
the same code path as the Slack desk (`actions`). Channels, kb_index and handoff never import it.
"""
