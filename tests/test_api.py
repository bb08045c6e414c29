"""The programmatic doors of ``qa serve`` (REST, OpenAI-compatible, MCP over HTTP and stdio),
each through a real server on a free loopback port and a real client: every door answers
with the citations ``Engine.answer`` gives, and each citation is exact.

Two servers: one over the bundled corpus with the real models (the answers), one over a copy
built with the hashing encoder (builds, the schema property test: fast and writable).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

import qa
from qa.api import chat_pieces, doors, is_loopback
from qa.errors import OptionsError
from qa.pipeline import Engine
from qa.records import Answer, Citation, CitedValue
from qa.testing import free_port, registered_encoder
from qa.web import launch
from tests.conftest import CORPUS, ROOT, fake_build
from tests.fakes import HashingEncoder

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing")

MEETING = "Where was the NATO Defense Ministers' Meeting held in October 2024?"
FOLLOW_UP = "Who represented South Korea there?"
KEY = "test-key-8c1f0e"


@contextmanager
def _serve(engine: Engine, corpus: Path | None, **options: Any) -> Iterator[SimpleNamespace]:
    port = free_port()
    demo = launch(
        corpus_dir=corpus, index_dir=engine.index_dir, port=port, engine=engine, block=False, **options
    )
    url = f"http://127.0.0.1:{port}"
    try:
        yield SimpleNamespace(
            url=url, engine=engine, corpus=corpus, http=httpx.Client(base_url=url, timeout=120)
        )
    finally:
        demo.close()


@pytest.fixture(scope="module")
def served(demo_engine) -> Iterator[SimpleNamespace]:
    """The bundled corpus with the real models; nothing here writes to its index."""
    with _serve(demo_engine, None) as server:
        yield server


class SlowHashingEncoder(HashingEncoder):
    """The hashing encoder, slowed down: a build that embeds stays running for a while."""

    def encode(self, texts, *, progress=None):
        time.sleep(1.5)
        return super().encode(texts, progress=progress)


@pytest.fixture(scope="module")
def writable(tmp_path_factory) -> Iterator[SimpleNamespace]:
    """A copy of the corpus built with the hashing encoder: fast answers, rebuildable."""
    base = tmp_path_factory.mktemp("api")
    corpus = base / "corpus"
    shutil.copytree(CORPUS, corpus)
    encoder = HashingEncoder()
    fake_build(corpus, base / "index", encoder)
    with registered_encoder(encoder), _serve(Engine(base / "index"), corpus) as server:
        yield server


def _spans(citations: list[Any]) -> list[tuple[str, int, int, str]]:
    def field(c: Any, name: str) -> Any:
        return c[name] if isinstance(c, dict) else getattr(c, name)

    return [(field(c, "source"), field(c, "start"), field(c, "end"), field(c, "excerpt")) for c in citations]


def _assert_exact(engine: Engine, citations: list[dict[str, Any]]) -> None:
    index = engine.index()
    for c in citations:
        assert index.document_text(c["source"])[c["start"] : c["end"]] == c["excerpt"]


# --- REST --------------------------------------------------------------------------------


@pytest.mark.slow
def test_rest_ask_gives_the_citations_of_qa_answer(served):
    expected = qa.answer(MEETING, index_dir=served.engine.index_dir)
    reply = served.http.post("/api/v1/ask", json={"question": MEETING})
    assert reply.status_code == 200
    body = reply.json()
    assert body["text"] == expected.text and body["abstained"] is expected.abstained
    assert body["citations"] and _spans(body["citations"]) == _spans(expected.citations)
    assert {"source", "title", "page", "section", "excerpt", "start", "end", "score"} <= set(
        body["citations"][0]
    )
    _assert_exact(served.engine, body["citations"])


@pytest.mark.slow
def test_rest_follow_up_is_resolved_against_the_history(served):
    first = served.engine.answer(MEETING)
    expected = served.engine.answer(FOLLOW_UP, history=[first])
    body = served.http.post("/api/v1/ask", json={"question": FOLLOW_UP, "history": [MEETING]}).json()
    assert body["query"] == expected.query and body["query"].startswith(f"{FOLLOW_UP} (")
    assert _spans(body["citations"]) == _spans(expected.citations)


@pytest.mark.slow
def test_rest_search_documents_and_health(served):
    passages = served.http.post("/api/v1/search", json={"query": "NATO summit Brussels", "k": 3}).json()
    assert len(passages) == 3
    _assert_exact(served.engine, passages)

    documents = served.http.get("/api/v1/documents").json()
    index = served.engine.index()
    assert [d["source"] for d in documents] == sorted(index.document_hashes)
    one = served.http.get(f"/api/v1/documents/{documents[0]['source']}").json()
    assert (
        one["text"] == index.document_text(documents[0]["source"]) and one["title"] == documents[0]["title"]
    )
    for name in ("not-indexed.txt", "..%2F..%2Fetc%2Fpasswd"):  # only indexed documents are served
        missing = served.http.get(f"/api/v1/documents/{name}")
        assert missing.status_code == 404 and "No indexed document" in missing.json()["detail"]

    health = served.http.get("/api/v1/health").json()
    assert health["status"] == "ok" and health["documents"] == len(documents) and health["chunks"] > 0
    assert health["index"] == str(served.engine.index_dir.resolve())  # how `qa ask` finds its server
    schema = served.http.get("/api/v1/openapi.json").json()
    assert {
        "/ask",
        "/search",
        "/documents",
        "/documents/{source}",
        "/build",
        "/build/{job_id}",
        "/health",
    } <= set(schema["paths"])
    assert "page" in schema["components"]["schemas"]["Citation"]["properties"]


@pytest.mark.slow
def test_rest_bad_input_gets_a_4xx_with_a_message(served):
    empty = served.http.post("/api/v1/ask", json={"question": "  ?! "})
    assert empty.status_code == 400 and "no letters or digits" in empty.json()["detail"]
    assert served.http.post("/api/v1/ask", json={"question": "x", "k": 0}).status_code == 422
    assert served.http.post("/api/v1/ask", json={"q": "x"}).status_code == 422
    assert served.http.post("/api/v1/ask", content=b"{not json").status_code == 422
    assert served.http.get("/api/v1/build/nope").status_code == 404


def test_build_runs_in_the_background_and_a_second_one_is_refused(writable):
    (writable.corpus / "zorblat.txt").write_text(
        "Zorblat Accord\n\nThe Zorblat Accord was signed in Reykjavik in 2031 by eleven states.\n"
    )
    with registered_encoder(SlowHashingEncoder()):
        started = writable.http.post("/api/v1/build")
        assert started.status_code == 202 and started.json()["state"] == "running"
        second = writable.http.post("/api/v1/build")
        assert second.status_code == 409 and "already running" in second.json()["detail"]
        job_url = f"/api/v1/build/{started.json()['id']}"
        deadline = time.monotonic() + 60
        while (job := writable.http.get(job_url).json())[
            "state"
        ] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
    assert job["state"] == "done", job
    assert job["report"]["added"] == ["zorblat.txt"] and job["stage"] == "write"
    assert "zorblat.txt" in [d["source"] for d in writable.http.get("/api/v1/documents").json()]
    answer = writable.http.post(
        "/api/v1/ask", json={"question": "Where was the Zorblat Accord signed?"}
    ).json()
    assert answer["citations"][0]["source"] == "zorblat.txt"


# --- the OpenAPI schema, as a property test ----------------------------------------------


def _rest_schema() -> dict[str, Any]:
    """The REST schema as the server publishes it (a server without keys; building the
    app loads nothing)."""
    from qa.api import _Doors, rest_app
    from qa.service import Service

    return rest_app(_Doors(Service(Engine("unused")), ())).openapi()


rest_schema = schemathesis.openapi.from_dict(_rest_schema())


def test_the_schema_tested_is_the_schema_served(writable):
    served = writable.http.get("/api/v1/openapi.json").json()
    assert served.pop("servers") == [{"url": "/api/v1"}] and served == _rest_schema()


@rest_schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests_never_fail_the_server(case, writable):
    """Schemathesis generates valid and invalid requests from the schema: no 5xx, every
    error a 4xx with a message, and every response as the schema describes."""
    response = case.call(base_url=f"{writable.url}/api/v1")
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.json()["detail"]
    # A schema-valid question can still be one the engine refuses ("?!": no letters or
    # digits), with the documented 400 and its message: only that check is left out.
    case.validate_response(response, excluded_checks=[positive_data_acceptance])


# --- OpenAI-compatible -------------------------------------------------------------------


@pytest.mark.slow
def test_openai_client_gets_the_answer_with_sources_stream_and_not(served):
    from openai import NotFoundError, OpenAI

    expected = served.engine.answer(MEETING)
    client = OpenAI(base_url=f"{served.url}/v1", api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list()] == ["qa"]

    completion = client.chat.completions.create(model="qa", messages=[{"role": "user", "content": MEETING}])
    content = completion.choices[0].message.content
    assert content == "".join(chat_pieces(expected))
    heading = "Closest passages (they do not answer the question):" if expected.abstained else "Sources:"
    assert content.startswith(expected.text) and f"\n\n{heading}\n[1] " in content
    extra = completion.model_extra["qa"]
    assert (
        _spans(extra["citations"]) == _spans(expected.citations) and extra["abstained"] is expected.abstained
    )

    stream = client.chat.completions.create(
        model="qa", messages=[{"role": "user", "content": MEETING}], stream=True
    )
    chunks = list(stream)
    assert len(chunks) > 3  # the role, the pieces, the end: streamed, not one blob
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == content
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert _spans(chunks[-1].model_extra["qa"]["citations"]) == _spans(expected.citations)

    with pytest.raises(NotFoundError, match="serves 'qa'"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": MEETING}])


@pytest.mark.slow
def test_openai_earlier_messages_are_the_conversation(served):
    from openai import BadRequestError, OpenAI

    first = served.engine.answer(MEETING)
    expected = served.engine.answer(FOLLOW_UP, history=[first])
    client = OpenAI(base_url=f"{served.url}/v1", api_key="unused", max_retries=0)
    messages = [
        {"role": "system", "content": "Answer from the documents."},
        {"role": "user", "content": MEETING},
        {"role": "assistant", "content": first.text},
        {"role": "user", "content": [{"type": "text", "text": FOLLOW_UP}]},
    ]
    completion = client.chat.completions.create(model="qa", messages=messages)
    assert completion.model_extra["qa"]["query"] == expected.query
    assert _spans(completion.model_extra["qa"]["citations"]) == _spans(expected.citations)
    with pytest.raises(BadRequestError, match="last message must be the user's question"):
        client.chat.completions.create(model="qa", messages=messages[:3])


def test_chat_content_lists_sources_and_quotes_them_when_abstaining():
    cited = [
        Citation("a.pdf", "Report", "The fleet sailed in 2023.", 0, 25, 0.9, page=3, section="Fleet"),
        Citation("b.txt", "Notes", "Ships left port.", 5, 21, 0.5),
    ]
    answer = Answer("q", cited, abstained=False, short_answer=CitedValue("2023", 1))
    pieces = chat_pieces(answer)
    assert "".join(pieces[:-1]) == answer.text
    assert pieces[-1] == "\n\nSources:\n[1] Report (a.pdf, page 3, § Fleet)\n[2] Notes (b.txt)"
    abstained = chat_pieces(Answer("q", cited[1:], abstained=True))
    assert (
        abstained[1]
        == "\n\nClosest passages (they do not answer the question):\n[1] Notes (b.txt): “Ships left port.”"
    )


# --- MCP ---------------------------------------------------------------------------------


async def _use_tools(client: Any, engine: Engine) -> None:
    """List the tools, call each, and check the citations against the engine and the text."""
    tools = {t.name for t in (await client.list_tools()).tools}
    assert tools == {"ask", "search", "get_passage", "list_documents"}

    asked = await client.call_tool("ask", {"question": MEETING})
    assert not asked.is_error, asked.content
    answer = asked.structured_content
    expected = await asyncio.to_thread(engine.answer, MEETING)
    assert answer["text"] == expected.text and _spans(answer["citations"]) == _spans(expected.citations)
    assert json.loads(asked.content[0].text)["text"] == expected.text

    first = answer["citations"][0]
    passage = (
        await client.call_tool(
            "get_passage", dict(source=first["source"], start=first["start"], end=first["end"])
        )
    ).structured_content
    text = engine.index().document_text(first["source"])
    assert passage["text"] == first["excerpt"] == text[first["start"] : first["end"]]
    assert passage["before"] == text[max(0, first["start"] - 400) : first["start"]]

    found = (await client.call_tool("search", {"query": "NATO summit Brussels", "k": 2})).structured_content
    assert len(found["passages"]) == 2
    _assert_exact(engine, found["passages"])

    documents = (await client.call_tool("list_documents", {})).structured_content["documents"]
    assert sorted(d["source"] for d in documents) == sorted(engine.index().document_hashes)

    refused = await client.call_tool("get_passage", {"source": "nope.txt", "start": 0, "end": 5})
    assert refused.is_error and "list_documents" in refused.content[0].text


@pytest.mark.slow
def test_mcp_over_http(served):
    from mcp import Client

    async def session() -> None:
        async with Client(f"{served.url}/mcp") as client:
            await _use_tools(client, served.engine)

    asyncio.run(session())


@pytest.mark.slow
def test_mcp_over_stdio(demo_index, demo_engine):
    """``qa mcp`` started by the SDK's client, as an agent would start it."""
    from mcp import Client, StdioServerParameters

    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "qa", "mcp", "--index", str(demo_index)],
        cwd=str(ROOT),
        env={**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"},
    )

    async def session() -> None:
        async with Client(server, read_timeout_seconds=300) as client:
            await _use_tools(client, demo_engine)

    asyncio.run(session())


# --- access ------------------------------------------------------------------------------


def test_every_door_needs_the_key_when_keys_are_set(writable):
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from openai import AuthenticationError, OpenAI

    with _serve(writable.engine, writable.corpus, api_keys=[KEY]) as served:
        http = served.http
        question = {"question": "Where was the NATO Defense Ministers' Meeting held?"}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
            for method, path, body in (
                ("POST", "/api/v1/ask", question),
                ("GET", "/api/v1/documents", None),
                ("GET", "/api/v1/health", None),
                ("POST", "/api/v1/build", None),
                ("GET", "/v1/models", None),
                ("POST", "/mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
            ):
                refused = http.request(method, path, json=body, headers=headers)
                assert refused.status_code == 401, (method, path, headers, refused.text)
                assert refused.headers["www-authenticate"] == "Bearer"
        assert http.get("/api/v1/openapi.json").status_code == 200  # the schema is public
        granted = http.post("/api/v1/ask", json=question, headers={"Authorization": f"Bearer {KEY}"})
        assert granted.status_code == 200 and granted.json()["citations"]

        with pytest.raises(AuthenticationError, match="API key is required"):
            OpenAI(base_url=f"{served.url}/v1", api_key="wrong", max_retries=0).models.list()
        assert (
            OpenAI(base_url=f"{served.url}/v1", api_key=KEY, max_retries=0).models.list().data[0].id == "qa"
        )

        async def listed() -> set[str]:
            import httpx2

            async with (
                httpx2.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as keyed,
                Client(streamable_http_client(f"{served.url}/mcp", http_client=keyed)) as client,
            ):
                return {t.name for t in (await client.list_tools()).tools}

        assert "ask" in asyncio.run(listed())


def test_binding_beyond_loopback_needs_api_keys(writable):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    with pytest.raises(OptionsError, match="QA_API_KEYS"):
        doors(writable.engine, host="0.0.0.0")
    routes, _ = doors(writable.engine, host="0.0.0.0", api_keys=[KEY])
    assert {getattr(r, "path", None) for r in routes} == {"/api/v1", "/v1", "/mcp"}


@pytest.mark.slow
def test_readme_openai_example_runs(served, capsys):
    import re

    readme = (ROOT / "README.md").read_text()
    (example,) = [b for b in re.findall(r"```python\n(.*?)```", readme, flags=re.S) if "from openai" in b]
    exec(compile(example.replace("http://127.0.0.1:7860/", f"{served.url}/"), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "[1]" in out and ".txt" in out
