"""The knowledge-base page (/console/kb): the published version, each article's served / 👎 /
handed-off-after counts over 30 days, the gaps, and teaching an article a gap's question (the
learning path the Slack desk uses: `KnowledgeBase.learn` now, `kb_index.store.add_phrasing` for
every rebuild). Teaching is a supervisor's action, audited."""

from __future__ import annotations

import inspect

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from bot.audit import record as audit_record
from bot.console.context import Console
from bot.console.flash import Flash
from bot.console.forms import clean
from bot.console.kb_view import article_stats, gap_clusters, stats_since
from kb_index.errors import UnknownArticleError
from kb_index.store import add_phrasing

STATS_DAYS = 30


def router(console: Console) -> APIRouter:
    r = APIRouter()
    flash = Flash(console.settings.secret_key)

    def article_ids() -> list[str]:
        ids = getattr(console.kb, "article_ids", None)
        return list(ids()) if callable(ids) else []

    @r.get("/console/kb", include_in_schema=False)
    async def kb_page(request: Request, m: str | None = None) -> Response:
        viewer = await console.sessions.require(request)
        ids = article_ids()
        async with console.sessionmaker() as session:
            stats = await article_stats(session, article_ids=ids, since=stats_since(STATS_DAYS))
            clusters = await gap_clusters(session, kb=console.kb)
        status = console.kb.status() if hasattr(console.kb, "status") else None
        return console.page(request, "kb.html", viewer, nav="kb", status=status, stats=stats, gaps=clusters,
                            article_ids=sorted(ids), days=STATS_DAYS, flash=flash.read(m))

    @r.post("/console/kb/teach", include_in_schema=False)
    async def teach(request: Request) -> Response:
        viewer = await console.sessions.require(request, supervisor=True)
        form = await request.form()
        article, question = clean(form.get("article_id"), limit=200), clean(form.get("question"), limit=500)
        ok, text = await _teach(viewer.user.actor, article, question)
        return RedirectResponse(flash.url("/console/kb", ok=ok, text=text), status_code=303)

    async def _teach(actor: str, article: str, question: str) -> tuple[bool, str]:
        if article not in article_ids():
            return False, "Choose an article of the published KB."
        if not question:
            return False, "Choose a question to teach."
        learn = getattr(console.kb, "learn", None)
        if learn is not None:
            try:
                result = learn(article_id=article, question=question, negative=False)
                if inspect.isawaitable(result):
                    await result
            except UnknownArticleError:
                return False, "That article is not in the published KB."
        async with console.sessionmaker() as session:
            await audit_record(session, actor=actor, action="kb.teach", target_kind="article", target_id=article,
                               detail={"chars": len(question)})
            await add_phrasing(session=session, article_id=article, question=question, agent_id=actor)  # commits
        return True, f"“{question}” is now a phrasing of {article}."

    return r


__all__ = ["router"]
