"""``qa build | ask | chat | search | info | serve | eval``: each verb calls one public
function and formats its result. A ``QAError`` becomes a one-line message and exit code 1."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from qa.config import RetrievalOptions, Settings
from qa.errors import IndexNotFoundError, OptionsError, QAError

if TYPE_CHECKING:
    from qa.client import Server
    from qa.evaluate import EvalReport, Squad2Report
    from qa.pipeline import Engine
from qa.records import Answer, Citation

# FAISS and numpy (qa.store, qa.pipeline) load inside the verbs that need them: a question
# sent to a running server answers before they would have finished importing.


def _settings(args: argparse.Namespace) -> Settings | None:
    """Build settings from the flags, over those the index was built with; ``None`` (keep
    them all) when no flag is given."""
    from qa.build import settings_as_built

    flags = {
        "model": args.model,
        "chunk_size": args.chunk_size,
        "chunk_overlap": args.chunk_overlap,
        "multilingual": False if args.no_multilingual else None,
    }
    given = {key: value for key, value in flags.items() if value is not None}
    return replace(settings_as_built(args.index), **given) if given else None


class _ProgressBar:
    """Draws one tqdm bar per build stage on stderr (the library itself never prints)."""

    LABELS: ClassVar[dict[str, str]] = {
        "read": "reading",
        "embed": "embedding",
        "embed-multilingual": "embedding (cross-lingual)",
    }

    def __init__(self) -> None:
        self.stage: str | None = None
        self.bar = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage == "write" and done == 0:
            self.close()
            print("writing the new index generation…", file=sys.stderr, flush=True)
        if stage not in self.LABELS or total == 0:
            return
        from tqdm import tqdm

        if stage != self.stage:
            self.close()
            self.stage = stage
            self.bar = tqdm(total=total, desc=self.LABELS[stage], unit="chunk" if "embed" in stage else "file",
                            file=sys.stderr, leave=True, dynamic_ncols=True)  # fmt: skip
        assert self.bar is not None
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def cmd_build(args: argparse.Namespace) -> int:
    from qa.build import build_index

    bar = _ProgressBar()
    try:
        report = build_index(
            args.corpus, args.index, settings=_settings(args), full=args.full, progress=bar, ray=args.ray
        )
    finally:
        bar.close()
    for skipped in report.skipped:
        print(f"skipped {skipped.source}: {skipped.reason}", file=sys.stderr)
    for note in report.cleaned:
        print(_cleaning_line(note.source, note.raw_chars, note.kept_chars), file=sys.stderr)
    print(report.summary())
    return 0


# A document that keeps less than this share of its text after cleaning is called out.
_MOSTLY_REMOVED = 0.5


def _cleaning_line(source: str, raw_chars: int, kept_chars: int) -> str:
    kept = 1.0 if raw_chars <= 0 else min(1.0, kept_chars / raw_chars)
    line = (
        f"cleaned {source}: kept {kept_chars:,} of {raw_chars:,} characters ({kept:.0%}), "
        f"removed {max(0, raw_chars - kept_chars):,} as page furniture"
    )
    if kept < _MOSTLY_REMOVED:
        line += " — most of its text was removed; check that this file is what you meant to index"
    return line


def _print_json(data: object) -> None:
    # The question is echoed as given; text that arrived as undecodable bytes holds lone
    # surrogates, which no output encoding accepts: escape them rather than crash.
    text = json.dumps(data, ensure_ascii=False, indent=2)
    print(text.encode("utf-8", "backslashreplace").decode("utf-8"))


def _print_citations(citations: list[Citation]) -> None:
    for n, c in enumerate(citations, start=1):
        dated = f", {c.date}" if c.date else ""
        page = "" if c.page is None else f", page {c.page}" + (" (OCR)" if c.ocr else "")
        section = f", section “{c.section}”" if c.section else ""
        print(
            f"\n[{n}] {c.title} ({c.source}{page}{section}{dated}; chars {c.start}-{c.end}; score {c.score:.3f})"
        )
        print(f"    {c.excerpt}")


def _retrieval(args: argparse.Namespace) -> RetrievalOptions:
    return RetrievalOptions(
        dense=not args.no_dense,
        lexical=not args.no_lexical,
        rerank=not args.no_rerank,
        cross_encoder=args.cross_encoder,
    )


def _answer_json(answer: Answer) -> dict[str, Any]:
    return {"question": answer.question, "text": answer.text, **asdict(answer)}


def _print_answer(answer: Answer, *, follows_up: bool = True) -> None:
    """The answer and its sources; with ``follows_up`` (the question came after others),
    also what was searched when the question was resolved against them."""
    if follows_up:
        from qa.pipeline import clean_question

        if answer.query != clean_question(answer.question):  # a follow-up, with its context
            print(f"(searched for: {answer.query})")
    print(answer.text)
    _print_citations(answer.citations)


def _server(args: argparse.Namespace) -> Server | None:
    """The running ``qa serve`` of this index (``--server``, else the configured host and
    port), unless ``--local`` or retrieval flags it does not take are given."""
    from qa.client import find_server

    if args.local or _retrieval(args) != RetrievalOptions():
        return None
    host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
    return find_server(args.server or f"http://{host}:{args.port}", args.index, args.api_keys)


def cmd_ask(args: argparse.Namespace) -> int:
    server = _server(args)
    if server is not None:
        result = server.ask(args.question, history=args.follow_up or [], k=args.k)
    else:
        from qa.pipeline import engine_for

        engine = engine_for(args.index)
        history: list[Answer] = []
        for earlier in args.follow_up or []:
            history.append(engine.answer(earlier, history=history, k=args.k, retrieval=_retrieval(args)))
        result = engine.answer(args.question, history=history, k=args.k, retrieval=_retrieval(args))
    if args.json:
        _print_json(_answer_json(result))
    else:
        _print_answer(result, follows_up=bool(args.follow_up))
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    """Questions from stdin, one a line, each answered in the context of the ones before (by
    a running server of the index when one answers, as ``qa ask``)."""
    server = _server(args)

    def answer(question: str, history: list[Answer]) -> Answer:
        if server is not None:
            return server.ask(question, history=[a.question for a in history], k=args.k)
        from qa.pipeline import engine_for

        return engine_for(args.index).answer(question, history=history, k=args.k, retrieval=_retrieval(args))

    history: list[Answer] = []
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            print("? ", end="", flush=True)
        line = sys.stdin.readline()
        if not line or not line.strip():
            return 0
        try:
            result = answer(line, history)
        except QAError as exc:  # one bad question does not end the conversation
            print(f"error: {exc}", file=sys.stderr)
            continue
        history.append(result)
        _print_answer(result)
        print()


def cmd_search(args: argparse.Namespace) -> int:
    from qa.pipeline import engine_for

    server = None if args.json else _server(args)  # --json prints the local hits' own shape
    if server is not None:
        for rank, passage in enumerate(server.search(args.query, k=args.k), start=1):
            print(f"{rank}. {passage.score:.4f}  {passage.source} chars {passage.start}-{passage.end}")
            print(f"   {passage.excerpt[:300]}{'…' if len(passage.excerpt) > 300 else ''}")
        return 0
    hits = engine_for(args.index).search(args.query, k=args.k, retrieval=_retrieval(args))
    if args.json:
        _print_json([asdict(h) for h in hits])
        return 0
    for rank, hit in enumerate(hits, start=1):
        ranks = ", ".join(f"{name} #{r}" for name, r in hit.ranks.items())
        print(
            f"{rank}. {hit.score:.4f}  {hit.chunk.source} chars {hit.chunk.start}-{hit.chunk.end}  ({ranks})"
        )
        print(f"   {hit.chunk.text[:300]}{'…' if len(hit.chunk.text) > 300 else ''}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from qa.build import corpus_changes
    from qa.store import open_index

    index = open_index(args.index)
    corpus = Path(args.corpus) if args.corpus is not None else index.corpus_dir
    documents = index.documents()
    print(f"index:      {index.path}")
    print(f"built:      {index.built_at} from {index.corpus_dir}")
    print(f"model:      {index.manifest.dense.model} ({index.manifest.dense.dimension}-d)")
    print(
        f"vectors:    {index.vector_index_type} ({'exact' if index.vector_index_type == 'flat' else 'approximate'} search)"
    )
    multilingual = index.manifest.multilingual
    print(f"cross-lingual: {multilingual.model if multilingual else 'off'}")
    settings = index.manifest.build_settings
    print(f"chunking:   {settings.chunk_size} chars, overlap {settings.chunk_overlap}")
    print(f"documents:  {len(documents)}, chunks: {index.chunk_count}")
    if args.documents:
        for document in documents:
            share = document.kept_share
            kept = "kept share unknown (indexed by an older qa)" if share is None else f"kept {share:.0%}"
            warning = (
                "  — most of its text was removed as furniture"
                if share is not None and share < _MOSTLY_REMOVED
                else ""
            )
            print(f"  {document.source}: {document.chunks} chunks, {kept}{warning}")
    if corpus.is_dir():
        changes = corpus_changes(corpus, index)
        pending = [("added", changes.added), ("changed", changes.changed), ("removed", changes.removed)]
        if any(names for _, names in pending):
            print("changed since the last build (run 'qa build'):")
            for label, names in pending:
                for name in names:
                    print(f"  {label:8} {name}")
        else:
            print("corpus:     up to date")
    return 0


AUTH_ENV = "QA_AUTH"


def login_from(args: argparse.Namespace) -> tuple[str, str] | None:
    """The (user, password) the server asks for: from --auth-file, the QA_AUTH environment
    variable or --auth (visible to every user of this machine in its process list)."""
    if args.auth_file is not None:
        try:
            value, origin = Path(args.auth_file).read_text().strip(), f"the file '{args.auth_file}'"
        except OSError as exc:
            raise OptionsError(
                f"Cannot read --auth-file '{args.auth_file}': {exc.strerror or exc}."
            ) from None
    elif args.auth is not None:
        value, origin = args.auth, "--auth"
    elif os.environ.get(AUTH_ENV):
        value, origin = os.environ[AUTH_ENV], AUTH_ENV
    else:
        return None
    user, colon, password = value.partition(":")
    if not colon or not user.strip():
        raise OptionsError(f"The login in {origin} must be USER:PASSWORD, for example ana:s3cret.")
    if not password:
        raise OptionsError(f"The password in {origin} is empty; nobody could log in. Give USER:PASSWORD.")
    return user.strip(), password


def cmd_feedback_export(args: argparse.Namespace) -> int:
    """The questions readers judged in the web chat, as ``qa eval`` JSONL."""
    from qa.conversations import STORE_NAME, ConversationStore, default_data_dir, export_feedback

    store = (Path(args.data) if args.data else default_data_dir(args.index)) / STORE_NAME
    if not store.is_file():
        raise OptionsError(
            f"No saved conversations at '{store}': judge answers in the web chat first, or pass "
            "--data with the folder 'qa serve' saves them in."
        )
    count = export_feedback(ConversationStore(store), args.file)
    plural = "" if count == 1 else "s"
    print(f"wrote {count} judged question{plural} to {args.file}; check them with 'qa eval {args.file}'",
          file=sys.stderr)  # fmt: skip
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from qa.build import build_index
    from qa.store import open_index
    from qa.web import launch

    auth = login_from(args)  # a bad login is an error before minutes of building
    try:
        open_index(args.index)
    except IndexNotFoundError:
        print(f"No index yet: building it from '{args.corpus}'…", file=sys.stderr)
        bar = _ProgressBar()
        try:
            print(build_index(args.corpus, args.index, settings=_settings(args), progress=bar).summary())
        finally:
            bar.close()
    launch(corpus_dir=args.corpus, index_dir=args.index, host=args.host, port=args.port, auth=auth,
           engine=_serving_engine(args), api_keys=args.api_keys, data_dir=args.data)  # fmt: skip
    return 0


def _serving_engine(args: argparse.Namespace) -> Engine:
    """The engine of a long-running door, with the retrieval options of the flags and config.
    With the default options it follows whatever the index is rebuilt with; given options
    pin the build settings of today's index (a rebuild with others is then an error)."""
    from qa.build import settings_as_built
    from qa.pipeline import Engine

    retrieval = _retrieval(args)
    if args.k is not None:
        retrieval = replace(retrieval, k=args.k)
    if retrieval == RetrievalOptions():
        return Engine(args.index)
    return Engine(args.index, settings=replace(settings_as_built(args.index), retrieval=retrieval))


def cmd_mcp(args: argparse.Namespace) -> int:
    """The MCP tools over stdin/stdout, for an agent that starts qa as its tool server."""
    from qa.mcp_server import mcp_server
    from qa.service import Service
    from qa.store import open_index

    open_index(args.index)  # no index: say so now, not in every tool call
    mcp_server(Service(_serving_engine(args), args.corpus)).run("stdio")
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    """Rebuild the index whenever the corpus changes, until interrupted."""
    from qa.records import BuildReport
    from qa.watch import watch

    def report(result: BuildReport | QAError) -> None:
        if isinstance(result, QAError):
            print(f"error: {result}", file=sys.stderr, flush=True)
            return
        for skipped in result.skipped:
            print(f"skipped {skipped.source}: {skipped.reason}", file=sys.stderr)
        print(result.summary(), flush=True)

    print(f"watching {args.corpus} (Ctrl-C stops)", file=sys.stderr, flush=True)
    watch(args.corpus, args.index, on_build=report, debounce=args.debounce)
    return 0


def _corpus_engine(name: str, documents: dict[str, tuple[str, str]], work: Path, **options: Any) -> Engine:
    from qa.evaluate import corpus_engine

    bar = _ProgressBar()
    try:
        engine, report = corpus_engine(documents, work / name, progress=bar, **options)
    finally:
        bar.close()
    print(f"{name}: {report.summary()}", file=sys.stderr)
    return engine


def cmd_eval(args: argparse.Namespace) -> int:
    from qa import evaluate as ev
    from qa.pipeline import Engine

    report: ev.EvalReport | ev.BeirReport | ev.SquadReport | ev.Squad2Report
    if args.beir:
        corpus, queries, qrels = ev.load_beir(args.beir)
        engine = _corpus_engine(Path(args.beir).name, corpus, Path(args.work))
        modes = ev.evaluate_retrieval(queries, qrels, engine)
        report = ev.BeirReport(Path(args.beir).name, len(queries), len(corpus), modes)
        lines = [f"{report.dataset}: {report.queries} queries over {report.documents} documents"]
        lines.append(f"{'mode':16} {'nDCG@10':>8} {'R@10':>7} {'R@100':>7} {'MRR@10':>7}")
        for mode, s in modes.items():
            lines.append(
                f"{mode:16} {s.ndcg_at_10:8.4f} {s.recall_at_10:7.4f} {s.recall_at_100:7.4f} {s.mrr_at_10:7.4f}"
            )
    elif args.squad2:
        report, lines = _squad2(args)
    elif args.squad:
        paragraphs, questions = ev.load_squad(args.squad, every=10 if args.every is None else args.every)
        engine = _corpus_engine("squad", paragraphs, Path(args.work))
        report = ev.evaluate_squad(questions, engine, len(paragraphs))
        lines = [
            f"SQuAD: {report.questions} questions, retrieving over {report.paragraphs} paragraphs",
            f"gold answer in the composed answer: {report.answer_contains_gold:.1%}",
            f"gold paragraph cited:               {report.gold_paragraph_cited:.1%}",
            f"abstained:                          {report.abstained:.1%}",
            f"answer length:                      {report.mean_answer_words:.0f} words (mean)",
            f"short answer first:                 {report.short_answers:.1%} of questions, "
            f"{report.short_answers_right or 0:.1%} of them right",
            f"latency:                            p50 {report.latency_p50_ms:.0f} ms",
        ]
    elif args.questions:
        report = ev.evaluate(ev.load_questions(args.questions), Engine(args.index))
        lines = _question_lines(report)
    else:
        raise OptionsError("Give a questions file (JSONL), --beir DIR, --squad FILE or --squad2 FILE.")
    if args.out:
        Path(args.out).write_text(report.to_json())
    print(report.to_json() if args.json else "\n".join(lines))
    return 0


def _squad2(args: argparse.Namespace) -> tuple[Squad2Report, list[str]]:
    """SQuAD 2.0 open-corpus: every paragraph a document; abstention off while asking, so
    that the trade-off of every threshold is measured in one pass."""
    from qa import evaluate as ev
    from qa.answerability import shipped_model
    from qa.text import is_non_latin

    model = shipped_model()
    if args.articles != "all" and args.articles not in model.articles:
        raise OptionsError(f"--articles must be all or one of {', '.join(model.articles)}.")
    articles = None if args.articles == "all" else model.articles[args.articles]
    paragraphs, questions = ev.load_squad2(args.squad2, articles=articles, every=args.every or 1)
    cross_lingual = any(is_non_latin(q.question) for q in questions)
    engine = _corpus_engine(
        Path(args.squad2).stem,
        paragraphs,
        Path(args.work),
        multilingual=cross_lingual,
        thresholds=ev.NEVER_ABSTAIN,
    )
    threshold = model.cross_lingual_threshold if cross_lingual else model.threshold
    report = ev.evaluate_squad2(questions, engine, len(paragraphs), threshold=threshold)

    def share(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1%}"

    lines = [
        f"SQuAD 2.0: {report.questions} questions ({report.answerable} answerable, {report.unanswerable} "
        f"unanswerable) from {len(report.articles)} articles, retrieving over {report.paragraphs} paragraphs",
        f"answerable, gold answer in the answer: {report.answerable_right:.1%}",
        f"unanswerable, abstained:               {report.unanswerable_abstained:.1%}",
        f"answer length:                         {report.median_answer_words:.0f} words (median)",
        f"short answers:                         {report.short_answers:.1%} of answered answerable questions, "
        f"exact match {share(report.short_exact_match)}, F1 {share(report.short_f1)}",
        f"latency:                               p50 {report.latency_p50_ms:.0f} ms",
        f"abstention threshold {report.threshold:.2f}; what other thresholds trade:",
        "  threshold  answerable right  unanswerable abstained",
        *(f"  {t:9.2f}  {right:16.1%}  {abstained:22.1%}" for t, right, abstained in report.trade_off),
    ]
    return report, lines


def _question_lines(report: EvalReport) -> list[str]:
    def share(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1%}"

    correct = round(report.accuracy * report.questions)
    return [
        f"accuracy:            {correct}/{report.questions} ({report.accuracy:.1%})",
        *(f"  {kind:18} {value:.1%}" for kind, value in report.by_type.items()),
        f"abstention:          precision {share(report.abstention_precision)}, "
        f"recall {share(report.abstention_recall)}",
        f"gold source cited:   {share(report.gold_source_hit_rate)}",
        f"citations verbatim:  {share(report.citation_verbatim_rate)}",
        f"latency:             p50 {report.latency_p50_ms:.0f} ms, p95 {report.latency_p95_ms:.0f} ms",
        f"failed:              {', '.join(report.failed) or 'none'}",
    ]


def build_parser() -> argparse.ArgumentParser:
    from qa import __version__

    parser = argparse.ArgumentParser(
        prog="qa", description="Ask questions of your documents, with citations."
    )
    parser.add_argument("--version", action="version", version=f"qa {__version__}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="options file (default: ./qa.toml if present); QA_* variables override it, flags override both",
    )
    verbs = parser.add_subparsers(dest="verb", required=True)

    def with_index(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--index", default="index", help="index folder (default: index)")
        return p

    def with_retrieval(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--no-dense", action="store_true", help="skip dense (embedding) search")
        p.add_argument("--no-lexical", action="store_true", help="skip BM25 search")
        p.add_argument("--no-rerank", action="store_true", help="keep the fused (RRF) order")
        p.add_argument("--cross-encoder", metavar="DIR", help="rerank with a local CrossEncoder folder")
        return p

    def with_server(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--server",
            metavar="URL",
            help="a running 'qa serve' to ask instead of loading the models (default: the configured "
            "host and port, http://127.0.0.1:7860); used when it serves the same index",
        )
        p.add_argument(
            "--local", action="store_true", help="load the models here, even when a server answers"
        )
        p.set_defaults(host="127.0.0.1", port=7860, api_keys=[])
        return p

    def with_build_settings(p: argparse.ArgumentParser) -> None:
        p.add_argument("--corpus", default="corpus", help="documents folder (default: corpus)")
        p.add_argument("--model", help="a local sentence-transformers folder (default: all-MiniLM-L6-v2)")
        p.add_argument("--chunk-size", type=int, help=f"characters per chunk (default {Settings.chunk_size})")
        p.add_argument(
            "--chunk-overlap", type=int, help=f"characters of overlap (default {Settings.chunk_overlap})"
        )
        p.add_argument("--no-multilingual", action="store_true", help="skip the cross-lingual index")

    build = with_index(verbs.add_parser("build", help="build or update the index from the corpus"))
    with_build_settings(build)
    build.add_argument("--full", action="store_true", help="rebuild from scratch")
    build.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="embed on the Ray cluster at ADDRESS ('auto': the one this machine belongs to; pip install 'qa[ray]')",
    )
    build.set_defaults(run=cmd_build)

    ask = with_server(
        with_retrieval(with_index(verbs.add_parser("ask", help="answer a question with citations")))
    )
    ask.add_argument("question")
    ask.add_argument("-k", type=int, help="passages to retrieve")
    ask.add_argument("--json", action="store_true", help="print the Answer as JSON")
    ask.add_argument(
        "--follow-up",
        metavar="EARLIER",
        action="append",
        help="an earlier question of the conversation (repeat, oldest first): QUESTION may refer back to it",
    )
    ask.set_defaults(run=cmd_ask)

    chat = with_server(
        with_retrieval(
            with_index(verbs.add_parser("chat", help="answer questions from stdin, resolving follow-ups"))
        )
    )
    chat.add_argument("-k", type=int, help="passages to retrieve")
    chat.set_defaults(run=cmd_chat)

    search = with_server(
        with_retrieval(with_index(verbs.add_parser("search", help="show the best passages with scores")))
    )
    search.add_argument("query")
    search.add_argument("-k", type=int, default=5, help="passages to show (default 5)")
    search.add_argument("--json", action="store_true")
    search.set_defaults(run=cmd_search)

    info = with_index(verbs.add_parser("info", help="model, counts, and documents changed since the build"))
    info.add_argument("--corpus", help="corpus folder to compare (default: the one last built)")
    info.add_argument(
        "--documents",
        action="store_true",
        help="list each document with its chunks and the share of text kept",
    )
    info.set_defaults(run=cmd_info)

    serve = with_index(verbs.add_parser("serve", help="start the web chat (builds the index if missing)"))
    with_build_settings(serve)
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    serve.add_argument("--port", type=int, default=7860)
    login = serve.add_mutually_exclusive_group()
    login.add_argument(
        "--auth-file",
        metavar="FILE",
        help=f"a file holding USER:PASSWORD required to open the chat (or set {AUTH_ENV}=USER:PASSWORD); "
        "use a login with --host 0.0.0.0",
    )
    login.add_argument(
        "--auth", metavar="USER:PASSWORD", help=f"as --auth-file, but visible in 'ps': prefer {AUTH_ENV}"
    )
    with_retrieval(serve).add_argument("-k", type=int, help="passages to retrieve")
    serve.add_argument(
        "--data",
        metavar="DIR",
        help="where conversations and feedback are saved (default: qa-data beside the index)",
    )
    # API keys come from the config file or QA_API_KEYS only: a flag would show them in ps.
    serve.set_defaults(run=cmd_serve, api_keys=[])

    mcp = with_retrieval(with_index(verbs.add_parser("mcp", help="serve the MCP tools over stdin/stdout")))
    mcp.add_argument("--corpus", help="documents folder for builds (default: the one last built)")
    mcp.add_argument("-k", type=int, help="passages to retrieve")
    mcp.set_defaults(run=cmd_mcp)

    watch = with_index(verbs.add_parser("watch", help="rebuild the index whenever the corpus changes"))
    watch.add_argument("--corpus", default="corpus", help="documents folder (default: corpus)")
    watch.add_argument(
        "--debounce", type=float, default=1.0, help="seconds of quiet before a rebuild (default 1)"
    )
    watch.set_defaults(run=cmd_watch)

    feedback = verbs.add_parser("feedback", help="the answers readers judged in the web chat")
    feedback_export = with_index(
        feedback.add_subparsers(dest="feedback_verb", required=True).add_parser(
            "export", help="write the judged questions as qa eval JSONL (a thumbs-down: a question to fix)"
        )
    )
    feedback_export.add_argument("file", help="the JSONL file to write")
    feedback_export.add_argument("--data", metavar="DIR", help="the folder 'qa serve' saves conversations in")
    feedback_export.set_defaults(run=cmd_feedback_export)

    evaluate = with_index(verbs.add_parser("eval", help="score answers on a JSONL question set"))
    evaluate.add_argument("questions", nargs="?", help="JSONL file: id, question, any/all/abstain, sources")
    evaluate.add_argument(
        "--beir", metavar="DIR", help="BEIR-format data: retrieval nDCG@10, recall, MRR per mode"
    )
    evaluate.add_argument(
        "--squad", metavar="FILE", help="SQuAD v1.1 JSON: gold answer found in the composed answer"
    )
    evaluate.add_argument(
        "--squad2",
        metavar="FILE",
        help="SQuAD 2.0 JSON: answerable right, unanswerable abstained, the threshold trade-off",
    )
    evaluate.add_argument(
        "--articles",
        default="all",
        help="with --squad2: ask only the questions of the answerability model's 'train', 'calibration' "
        "or 'held-out' articles (default all); the corpus is always the whole file",
    )
    evaluate.add_argument(
        "--every", type=int, help="keep every Nth question (default: 10 with --squad, 1 with --squad2)"
    )
    evaluate.add_argument(
        "--work", default=".qa-eval", help="where --beir/--squad write their corpus and index"
    )
    evaluate.add_argument("--json", action="store_true", help="print the full report as JSON")
    evaluate.add_argument("--out", help="also write the JSON report to this file")
    evaluate.set_defaults(run=cmd_eval)
    return parser


# Config options whose flag is their negation.
_NEGATED = {
    "multilingual": "no_multilingual",
    "dense": "no_dense",
    "lexical": "no_lexical",
    "rerank": "no_rerank",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, with qa.toml (or ``--config FILE``, anywhere in it) and QA_*
    variables as its flags' defaults: a flag overrides the environment, which overrides the
    file. Raises ``OptionsError`` for a bad config file or variable."""
    from qa.config_file import load_config

    config_flag = argparse.ArgumentParser(add_help=False)
    config_flag.add_argument("--config")
    known, rest = config_flag.parse_known_args(argv)
    values = load_config(known.config)
    defaults = {_NEGATED.get(name, name): value for name, value in values.items()}
    defaults.update({_NEGATED[name]: not value for name, value in values.items() if name in _NEGATED})
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for verb in action.choices.values():
                dests = {a.dest for a in verb._actions} | set(verb._defaults)
                verb.set_defaults(**{dest: value for dest, value in defaults.items() if dest in dests})
    args = parser.parse_args(rest)
    args.config = known.config
    return args


def main(argv: list[str] | None = None) -> int:
    # transformers draws a "Loading weights" bar each time a model loads: not ours to show.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        args = parse_args(argv)
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        return int(args.run(args))
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
