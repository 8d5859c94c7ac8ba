"""`switchboard kb ...`: ingest, search, eval, gaps, tune.

The glue between `Settings`, the database and the KB engine; `kb_index` itself reads no settings
and no conversation tables. The engine's modules are imported inside the commands on purpose:
they load numpy, FAISS and the model runtime, which `switchboard --help` and every other command
can do without.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from bot import store as bot_store
from bot.db import with_session
from bot.settings import Settings
from kb_index import store as kb_store
from kb_index.threshold import threshold_in_force

app = typer.Typer(help="Knowledge base: ingest, search, eval, gaps, tune.", no_args_is_help=True)

IndexDir = Annotated[
    Path | None, typer.Option("--index-dir", help="Index folder (default: INDEX_DIR setting)")
]
ModelPath = Annotated[
    str | None, typer.Option("--model-path", help="Local model folder (default: MODEL_PATH or bundled)")
]


def _settings() -> Settings:
    return Settings()


def _embedder(model_path: str | None, index_dir: Path | None = None) -> Any:
    from kb_index.embed import Embedder  # noqa: PLC0415 heavy: KB engine, kb commands only

    s = _settings()
    if index_dir is not None:
        return Embedder.for_index(index_dir, model_path=model_path, backend=s.embed_backend,
                                  threads=s.embed_threads)
    return Embedder.load(model_path, backend=s.embed_backend, threads=s.embed_threads)


async def _with_db(fn: Any) -> Any:
    """Run ``fn(session)`` against the configured database; None when it is unreachable or unmigrated."""
    def report(exc: Exception) -> None:
        typer.echo(f"database not used: {type(exc).__name__}: {str(exc).splitlines()[0]}", err=True)

    return await with_session(_settings().database_url, fn, report)


@app.command()
def ingest(
    path: Annotated[list[Path], typer.Argument(help="Folders or files of articles")],
    index_dir: IndexDir = None,
    model_path: ModelPath = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    no_db: Annotated[
        bool, typer.Option("--no-db", help="Do not read learned phrasings or record the version")
    ] = False,
) -> None:
    """Build a new index version (only changed content is embedded) and publish it."""
    from kb_index.build import build_index  # noqa: PLC0415 heavy: KB engine, kb commands only

    s = _settings()
    index_dir = index_dir or s.index_dir
    emb = _embedder(model_path or s.model_path, index_dir)
    extra = [] if no_db else (asyncio.run(_with_db(lambda ss: kb_store.list_phrasings(session=ss))) or [])
    report = build_index(path, index_dir, embedder=emb, extra_phrasings=extra, progress=sys.stderr.isatty(),
                         max_file_bytes=int(s.kb_max_file_mb * 1024 * 1024))
    if not no_db:
        asyncio.run(
            _with_db(
                lambda ss: kb_store.record_version(
                    session=ss,
                    index_dir=index_dir,
                    version=report.version,
                    articles=report.articles,
                    rows=report.rows,
                    model=emb.name,
                )
            )
        )
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        typer.echo(
            f"index v{report.version} in {report.path}: {report.articles} articles, {report.rows} rows "
            f"({report.embedded} embedded, {report.reused} reused; +{len(report.added)} ~{len(report.changed)} "
            f"-{len(report.removed)} articles) in {report.seconds:.1f}s"
        )
        if report.validation:
            typer.echo(f"validation: {json.dumps(report.validation)}")
        for e in report.errors:
            typer.echo(f"error: {e}", err=True)
    if report.errors and report.articles == 0:
        raise typer.Exit(1)


@app.command()
def search(
    query: str,
    k: Annotated[int, typer.Option("--k")] = 3,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    history: Annotated[list[str] | None, typer.Option("--history", help="Earlier customer turns")] = None,
    index_dir: IndexDir = None,
    model_path: ModelPath = None,
) -> None:
    """Search the published index."""
    from kb_index.index import KnowledgeBase  # noqa: PLC0415 heavy: KB engine, kb commands only

    s = _settings()
    index_dir = index_dir or s.index_dir
    kb = KnowledgeBase.open(index_dir, embedder=_embedder(model_path or s.model_path, index_dir))
    hits = asyncio.run(kb.search(query, history=history or (), k=k))
    if as_json:
        typer.echo(json.dumps([_hit_dict(h) for h in hits], indent=2))
        return
    thr = threshold_in_force(s.answer_threshold, kb)
    typer.echo(f"threshold in force: {thr.value:.3f} ({thr.source}; {kb.status()['embed_backend']})")
    for h in hits:
        mark = "answer" if h.confidence >= thr.value else "      "
        typer.echo(f"{h.confidence:.2f} {mark} {h.article_id}  {h.title}\n      {h.snippet}")


def _hit_dict(h: Any) -> dict[str, Any]:
    return {
        f: getattr(h, f) for f in ("article_id", "title", "snippet", "answer", "score", "confidence", "url")
    }


@app.command("eval")
def eval_(
    articles: Annotated[Path, typer.Option("--articles", help="Articles JSONL (or any ingestible folder)")],
    queries: Annotated[
        Path,
        typer.Option(
            "--queries",
            help='JSONL {"text", "expected": id | null, "history"?: [earlier turns], "last_article"?, '
            '"kind"?: followup | switch}',
        ),
    ],
    tune_on: Annotated[
        Path | None, typer.Option("--tune-on", help="Queries JSONL to tune the threshold on")
    ] = None,
    serving_threshold: Annotated[
        float | None,
        typer.Option(
            "--serving-threshold",
            help="Threshold for conversation rows (default: ANSWER_THRESHOLD, else the index's calibrated one)",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    model_path: ModelPath = None,
) -> None:
    """Build a throwaway index from --articles and score --queries (one JSON object); rows with a
    history are scored apart, under "conversation"."""
    from kb_index.build import build_index  # noqa: PLC0415 heavy: KB engine, kb commands only
    from kb_index.evaluate import (  # noqa: PLC0415 heavy: KB engine, kb commands only
        evaluate_all,
        read_cases,
        read_queries,
    )
    from kb_index.index import KnowledgeBase  # noqa: PLC0415 heavy: KB engine, kb commands only

    settings = _settings()
    try:
        cases = read_cases(queries)
    except (ValueError, KeyError) as err:
        typer.echo(f"error: {queries}: {err}", err=True)
        raise typer.Exit(2) from None
    emb = _embedder(model_path or settings.model_path)
    with tempfile.TemporaryDirectory(prefix="kb-eval-") as tmp:
        report = build_index(articles, Path(tmp), embedder=emb, progress=sys.stderr.isatty())
        for e in report.errors:
            typer.echo(f"error: {e}", err=True)
        kb = KnowledgeBase.open(Path(tmp), embedder=emb)
        tune = read_queries(tune_on) if tune_on else None
        explicit = settings.answer_threshold if serving_threshold is None else serving_threshold
        thr = threshold_in_force(explicit, kb).value
        result = asyncio.run(evaluate_all(kb, cases, serving_threshold=thr, tune_on=tune))
    result["validation"] = report.validation
    typer.echo(json.dumps(result, indent=2 if not as_json else None))


@app.command()
def gaps(
    limit: Annotated[int, typer.Option(help="Most recent unanswered questions to read")] = 5000,
    top: Annotated[int, typer.Option(help="Clusters to show")] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    model_path: ModelPath = None,
) -> None:
    """Cluster the questions the bot could not answer confidently (from the database)."""
    from kb_index.gaps import gaps as find_gaps  # noqa: PLC0415 heavy: KB engine, kb commands only

    questions = asyncio.run(_with_db(lambda ss: bot_store.unanswered_questions(session=ss, limit=limit))) or []
    clusters = (
        find_gaps(questions, embedder=_embedder(model_path or _settings().model_path))[:top]
        if questions
        else []
    )
    if as_json:
        typer.echo(
            json.dumps(
                [{"size": g.size, "label": g.label, "examples": g.examples} for g in clusters], indent=2
            )
        )
        return
    if not clusters:
        typer.echo("no unanswered questions")
    for g in clusters:
        typer.echo(f"{g.size:>5}  {g.label}")
        for ex in g.examples[1:]:
            typer.echo(f"       - {ex}")


@app.command()
def tune(
    index_dir: IndexDir = None,
    epochs: Annotated[int, typer.Option(help="Passes over the pairs")] = 1,
    max_pairs: Annotated[int, typer.Option(help="Cap on training pairs (time)")] = 20000,
    model_path: ModelPath = None,
) -> None:
    """Fine-tune the embedding model on the KB's own phrasings (contrastive), save it beside the index.

    Re-run `kb ingest` afterwards: the index is rebuilt with the tuned model, which is then used
    whenever it is present."""
    from kb_index.tune import tune as run_tune  # noqa: PLC0415 heavy: KB engine, kb commands only

    s = _settings()
    index_dir = index_dir or s.index_dir
    out = run_tune(index_dir, base_model=model_path or s.model_path, epochs=epochs, max_pairs=max_pairs)
    typer.echo(f"tuned model saved to {out}; run `switchboard kb ingest` to re-index with it")
