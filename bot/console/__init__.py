"""The web console under /console: server-rendered pages for agents and supervisors.

    mount(app, parts)        # bot/app.py; the pages say how to create the first user until one exists

Owns its accounts (`users`), sessions and CSRF (`auth`), live updates (`live`) and pages
(`pages_*`, Jinja2 `templates/`, vendored `static/`), with two helpers every page shares: `flash`
(the signed message a redirect carries) and `forms` (typed text cleaned of control characters). Its
actions are the agent actions (`bot.agents`), the same code path as the Slack desk (`actions`); a
person's export and erasure are `bot.gdpr`'s (`pages_rights`). Channels, kb_index and handoff never
import it.
"""
