"""The MCP door: ``ask``, ``search``, ``get_passage`` and ``list_documents`` as tools of
the official MCP SDK's ``MCPServer``, over stdio (``qa mcp``) or streamable HTTP (mounted
by ``qa serve`` at ``/mcp``, see ``qa.api``).

Named ``mcp_server`` so that it does not shadow the ``mcp`` package. The tools translate:
each calls one method of ``qa.service.Service`` and returns its JSON.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from qa.errors import QAError
from qa.service import CONTEXT_CHARS, Service, answer_dict

_T = TypeVar("_T")
Runner = Callable[..., Awaitable[Any]]

INSTRUCTIONS = (
    "Answers questions from the user's indexed documents with exact citations. Every answer "
    "sentence is copied from a document; each citation's excerpt is document_text[start:end], "
    "checkable with get_passage. When 'abstained' is true the documents do not answer the "
    "question: say so rather than guess, and treat the cited passages only as the closest found."
)


async def _in_thread(fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
    import anyio.to_thread

    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))


def mcp_server(service: Service, *, run: Runner = _in_thread) -> MCPServer:
    """An MCP server whose tools answer from ``service``; ``run`` calls a blocking function
    off the event loop (the HTTP doors pass their shared concurrency limit)."""
    from qa import __version__

    server: MCPServer = MCPServer("qa", instructions=INSTRUCTIONS, version=__version__)

    async def call(fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
        try:
            return await run(fn, *args, **kwargs)
        except QAError as exc:
            raise ToolError(str(exc)) from exc
        except KeyError as exc:
            raise ToolError(
                f"No indexed document {exc.args[0]!r}; list_documents names the indexed ones."
            ) from exc

    @server.tool()
    async def ask(question: str, k: int | None = None, history: list[str] | None = None) -> dict[str, Any]:
        """Answer a question from the documents. Returns text (with [n] markers), abstained,
        short_answer and citations (source, title, excerpt, start, end, page, section, score).
        history: earlier questions of the conversation, oldest first, for follow-ups."""
        return answer_dict(await call(service.answer, question, history=history or [], k=k))

    @server.tool()
    async def search(query: str, k: int = 5) -> dict[str, Any]:
        """The k best passages for a query, each with source, title, excerpt, start, end,
        page, section and score; no answer is composed."""
        return {"passages": [asdict(c) for c in await call(service.passages, query, k=k)]}

    @server.tool()
    async def get_passage(source: str, start: int, end: int, context: int = CONTEXT_CHARS) -> dict[str, Any]:
        """The exact text document[start:end] of an indexed document, with `context`
        characters before and after: check a citation, or read around it."""
        return await call(service.passage, source, start, end, context=context)

    @server.tool()
    async def list_documents() -> dict[str, Any]:
        """The indexed documents: source (the id other tools take), title, date, chunks."""
        return {"documents": await call(service.documents)}

    return server
