"""Hostile documents and uploads: what an attacker can put in the corpus folder or send to
the server must not freeze, exhaust, overwrite or leak.

Each row of the attack table (issue 12) is a test here, with small generated files: the
bombs are scaled down to what shows that the limit holds (the limits are scaled with them).
Builds use the fast hashing encoder.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from qa.build import build_index
from qa.chunking import chunk_document
from qa.cli import main
from qa.config import Settings, Thresholds
from qa.corpus import PREVIOUS_VERSIONS, save_upload
from qa.errors import CorpusError, UploadError
from qa.ingest import read_document
from qa.pipeline import Engine
from qa.records import CorpusFile
from qa.sandbox import DocumentReaders, ReadLimits, check_docx, check_pdf
from qa.store import open_index
from qa.testing import free_port, registered_encoder
from tests.conftest import ROOT, event_result, fake_build, start_event
from tests.fakes import HashingEncoder
from tests.test_web import browser  # noqa: F401 (the Chromium fixture)

# Gradio's queue uses pandas options that pandas 3 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing")

GOOD = "Harbour report\n\nThe harbour of Port Quillon reopened in May after the storm season ended.\n"


# --- generators -----------------------------------------------------------------------------

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
    'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName='
    '"/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.'
    'document.main+xml"/></Types>'
)
_RELATIONSHIPS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
    'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
    'officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>'
)
_WORD = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


_DULL = b"<w:p><w:r><w:t>All work and no play makes Jack a dull boy.</w:t></w:r></w:p>"


def docx_bomb(path: Path, paragraphs: int, paragraph: bytes = _DULL) -> Path:
    """A valid DOCX whose one XML part holds ``paragraphs`` identical paragraphs: deflate packs
    them about 250:1 (66 MB of XML in a 260 KB file per million of the default one)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _RELATIONSHIPS)
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            member.write(f'<?xml version="1.0"?><w:document xmlns:w="{_WORD}"><w:body>'.encode())
            block = paragraph * 10_000
            for _ in range(paragraphs // 10_000):
                member.write(block)
            member.write(b"</w:body></w:document>")
    return path


def shared_stream_pdf(path: Path, pages: int, stream_bytes: int) -> Path:
    """A PDF whose ``pages`` pages all draw one content stream of ``stream_bytes`` (of text
    drawing instructions), stored once and compressed: tiny on disk, huge to extract."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    line = b"BT /F1 9 Tf 20 700 Td (the shared stream draws this line once more) Tj ET\n"
    stream = DecodedStreamObject()
    stream.set_data(line * (stream_bytes // len(line)))
    writer = PdfWriter()
    contents = writer._add_object(stream.flate_encode(level=9))
    font = writer._add_object(
        DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
    )
    for _ in range(pages):
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        page[NameObject("/Contents")] = contents
    with path.open("wb") as handle:
        writer.write(handle)
    return path


def _corpus(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.txt").write_text(GOOD)
    return corpus


def _reasons(report) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {s.source: s.reason for s in report.skipped}


# --- row 1: DOCX zip bomb ---------------------------------------------------------------------


def test_docx_bomb_is_refused_from_its_zip_directory_before_parsing(tmp_path, fake_encoder):
    corpus = _corpus(tmp_path)
    bomb = docx_bomb(corpus / "bomb.docx", 600_000)  # 40 MB of XML in ~160 KB
    assert bomb.stat().st_size < 400_000
    limits = ReadLimits(docx_unpacked_bytes=16 << 20)
    started = time.perf_counter()
    report = fake_build(corpus, tmp_path / "index", fake_encoder, read_limits=limits)
    assert time.perf_counter() - started < 20
    reason = _reasons(report)["bomb.docx"]
    assert (
        re.match(r"unpacks to 4\d MB from 0\.\d MB \(a zip bomb", reason) and "the limit is 16 MB" in reason
    ), reason
    assert report.added == ["good.txt"]


def test_docx_check_passes_ordinary_documents(tmp_path):
    ordinary = docx_bomb(tmp_path / "ordinary.docx", 10_000)
    check_docx(ordinary.read_bytes())  # 660 KB of XML: fine
    with pytest.raises(CorpusError, match=r"limit is 0\.5 MB"):
        check_docx(ordinary.read_bytes(), limit=512 * 1024)


def test_a_document_that_needs_more_memory_than_the_limit_is_skipped(tmp_path):
    """Under the unpacked-size check but over the memory limit: the worker's address space is
    capped, so the parse fails there (never in the building process) and the file is skipped
    with the limit named; the next file gets a fresh worker."""
    corpus = _corpus(tmp_path)
    docx_bomb(corpus / "heavy.docx", 8_000_000, b"<w:p/>")  # 56 MB of XML, 8 million elements
    files = [
        CorpusFile("heavy.docx", corpus / "heavy.docx", ""),
        CorpusFile("good.txt", corpus / "good.txt", ""),
    ]
    # Time enough for a loaded machine: the memory limit is what this is about.
    with DocumentReaders(ReadLimits(memory_bytes=640 << 20, seconds=600, workers=1)) as readers:
        results = dict((file.source, result) for file, result in readers.read(files))
    assert str(results["heavy.docx"]) == "needs more than 640 MB of memory to read"
    good = results["good.txt"]
    assert not isinstance(good, CorpusError) and "Port Quillon" in good.text


# --- row 3: PDF pages sharing one huge content stream ---------------------------------------


def test_pdf_whose_pages_share_a_huge_stream_is_refused_before_extraction(tmp_path, fake_encoder):
    corpus = _corpus(tmp_path)
    pdf = shared_stream_pdf(corpus / "shared.pdf", pages=200, stream_bytes=1 << 20)  # 200 MB to parse
    assert pdf.stat().st_size < 100_000
    started = time.perf_counter()
    report = fake_build(corpus, tmp_path / "index", fake_encoder)
    assert time.perf_counter() - started < 20
    assert "200 pages hold more than 128 MB of drawing instructions" in _reasons(report)["shared.pdf"]
    assert report.added == ["good.txt"]


def test_pdf_check_counts_a_stream_once_per_page_that_draws_it(tmp_path):
    pdf = shared_stream_pdf(tmp_path / "three.pdf", pages=3, stream_bytes=100_000).read_bytes()
    check_pdf(pdf, limit=300_000)
    with pytest.raises(CorpusError, match="3 pages hold more than"):
        check_pdf(pdf, limit=250_000)


def test_a_file_that_reads_too_long_is_skipped_and_the_build_goes_on(tmp_path, fake_encoder):
    corpus = _corpus(tmp_path)
    # 64 MB of drawing: under the stream check, 15-30 s of extraction with PDFium.
    shared_stream_pdf(corpus / "slow.pdf", pages=64, stream_bytes=1 << 20)
    (corpus / "later.txt").write_text("Later notes\n\nThe lighthouse keeper retired in June last year.\n")
    started = time.perf_counter()
    report = fake_build(corpus, tmp_path / "index", fake_encoder, read_limits=ReadLimits(seconds=2))
    elapsed = time.perf_counter() - started
    assert _reasons(report)["slow.pdf"].startswith("took longer than 2 s to read")
    assert sorted(report.added) == ["good.txt", "later.txt"]
    assert elapsed < 15, elapsed


# --- row 6: a file changed during a build -------------------------------------------------


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


OLD = b"Tide table\n\nThe spring tide peaks at six in the morning on the first day.\n"
NEW = b"Tide table\n\nThe spring tide peaks at nine in the evening on the last day.\n"


@pytest.mark.parametrize("changed_after", ["scan", "read"])
def test_a_file_changed_during_a_build_is_stored_whole_and_the_next_build_catches_up(
    tmp_path, fake_encoder, changed_after
):
    """The index holds the text it read with the hash of exactly those bytes: changed after
    the scan, the new version is indexed whole; after the read, the old one is, and the next
    build sees the change."""
    corpus = _corpus(tmp_path)
    tide = corpus / "tide.txt"
    tide.write_bytes(OLD)

    def change(stage: str, done: int, total: int) -> None:
        if stage == changed_after and done == total:
            tide.write_bytes(NEW)

    fake_build(corpus, tmp_path / "index", fake_encoder, progress=change)
    index = open_index(tmp_path / "index")
    stored = index.document_text("tide.txt")
    version = NEW if changed_after == "scan" else OLD
    assert ("nine in the evening" in stored) == (version is NEW)
    assert index.document_hashes["tide.txt"] == _sha(version)

    second = fake_build(corpus, tmp_path / "index", fake_encoder)
    assert second.changed == ([] if version is NEW else ["tide.txt"])
    assert "nine in the evening" in open_index(tmp_path / "index").document_text("tide.txt")


# --- row 5: links out of the corpus -----------------------------------------------------------


def test_links_out_of_the_corpus_are_skipped_and_links_inside_indexed_once(tmp_path, fake_encoder):
    corpus = _corpus(tmp_path)
    secret = tmp_path / "passwd.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n\nThe vault code is 4711 and nobody else knows.\n")
    (corpus / "passwd.txt").symlink_to(secret)
    (corpus / "sub").mkdir()
    (corpus / "sub" / "outside.txt").symlink_to("../../passwd.txt")  # relative, climbing out
    (corpus / "alias.txt").symlink_to("good.txt")
    report = fake_build(corpus, tmp_path / "index", fake_encoder)
    reasons = _reasons(report)
    assert "a link to a file outside the corpus folder" in reasons["passwd.txt"]
    assert "a link to a file outside the corpus folder" in reasons["sub/outside.txt"]
    assert reasons["alias.txt"] == "a link to good.txt, which is indexed already"
    index = open_index(tmp_path / "index")
    assert set(index.document_hashes) == {"good.txt"}
    assert all("4711" not in index.document_text(s) for s in index.document_hashes)


# --- row 2 and 7: no super-linear text processing -----------------------------------------

# (name, repeated unit, suffix, smaller size): adversarial shapes for the regexes and loops
# over document text. Each is read at the smaller size and at ten times it: 100 KB and 1 MB,
# except where the Markdown parser is linear but slow (markdown-it-py spends ~45 us on each
# "[" of a run: 1 MB takes ~45 s, inside the read time limit), which are measured 10x smaller.
ADVERSARIAL = [
    ("run of [", "[", ".md", 10_000),
    ("run of [ in text", "[", ".txt", 100_000),
    ("run of (", "(", ".md", 100_000),
    ("run of *", "*", ".md", 100_000),
    ("run of _ and `", "_`", ".md", 10_000),
    ("![ and ](", "![a](", ".md", 10_000),
    ("spaces", " ", ".txt", 100_000),
    ("dots", ".", ".txt", 100_000),
    ("lowercase lines without punctuation", "a list of words\n", ".txt", 100_000),
    ("lowercase lines in markdown", "a list of words\n", ".md", 100_000),
    ("one word repeated", "cookies ", ".txt", 100_000),
]
GROWTH = 10
# Linear growth is 10x for 10x the input; quadratic is 100x. The bound leaves room for a
# shared, loaded machine (one run of the larger size can take twice as long as it should).
# Below the floor, timings are noise (and a file read that fast is fine whatever its shape).
RATIO_BOUND, FLOOR_SECONDS = 40, 0.5


class _TooSlow(Exception):
    pass


def _read_clean_chunk(path: Path) -> None:
    try:
        document = read_document(CorpusFile(path.name, path, ""))
    except CorpusError:
        return  # nothing usable is a fine outcome; the time it took is what is measured
    chunk_document(document, size=1000, overlap=200)


def _time(work: Callable[[], None], budget: float) -> float:
    """Seconds ``work`` took; ``_TooSlow`` once it takes longer than ``budget`` (a regex that
    backtracks checks for signals, so the alarm interrupts it)."""

    def alarm(signum: int, frame: object) -> None:
        raise _TooSlow

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, budget)
    try:
        started = time.perf_counter()
        work()
        return time.perf_counter() - started
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize(
    ("unit", "suffix", "size"), [pytest.param(u, s, z, id=n) for n, u, s, z in ADVERSARIAL]
)
def test_reading_cleaning_and_chunking_take_linear_time(tmp_path, unit, suffix, size):
    def sample(size: int) -> Path:
        path = tmp_path / f"sample-{size}{suffix}"
        path.write_text("Adversarial sample\n\n" + (unit * (size // len(unit) + 1))[:size] + "\n")
        return path

    small, large = sample(size), sample(GROWTH * size)
    try:
        small_seconds = min(_time(lambda: _read_clean_chunk(small), 10) for _ in range(2))
    except _TooSlow:
        pytest.fail(f"{size // 1000} KB took more than 10 s")
    budget = max(RATIO_BOUND * small_seconds, FLOOR_SECONDS)
    try:
        _time(lambda: _read_clean_chunk(large), budget)
    except _TooSlow:
        pytest.fail(
            f"{size // 1000} KB took {small_seconds:.3f} s, {GROWTH * size // 1000} KB more than "
            f"{budget:.1f} s: worse than linear"
        )


def test_the_ratio_test_catches_quadratic_work():
    """The measurement itself: a quadratic join is caught, a linear one passes."""

    def quadratic(n: int) -> None:
        text = ""
        for _ in range(n // 100):
            text = text + "x" * 100
            text.find("y")  # a scan of everything so far, each time

    def linear(n: int) -> None:
        "".join("x" * 100 for _ in range(n // 100)).find("y")

    small = min(_time(lambda: quadratic(100_000), 10) for _ in range(2))
    with pytest.raises(_TooSlow):
        _time(lambda: quadratic(3_000_000), max(RATIO_BOUND * small * 3, FLOOR_SECONDS))
    small = min(_time(lambda: linear(100_000), 10) for _ in range(2))
    _time(lambda: linear(1_000_000), max(RATIO_BOUND * small, FLOOR_SECONDS))


# --- the server: hostile files while it serves, uploads, logins --------------------------------


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory) -> Iterator[SimpleNamespace]:
    """A served index of two documents; a rebuild reads each file for at most 6 s."""
    from qa.web import launch

    encoder = HashingEncoder()
    base = tmp_path_factory.mktemp("hostile-server")
    corpus = base / "corpus"
    corpus.mkdir()
    (corpus / "good.txt").write_text(GOOD)
    (corpus / "ferry.txt").write_text("Ferry notes\n\nThe ferry to Quillon leaves the pier at nine.\n")
    index_dir = base / "index"
    with registered_encoder(encoder):
        fake_build(corpus, index_dir, encoder)
        port = free_port()
        demo = launch(
            corpus_dir=corpus,
            index_dir=index_dir,
            port=port,
            engine=Engine(index_dir, encoders=[encoder]),
            read_limits=ReadLimits(seconds=6),
            block=False,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            yield SimpleNamespace(url=url, corpus=corpus, index_dir=index_dir, encoder=encoder)
        finally:
            demo.close()


def _run(url: str, element: str, event: str, data: list) -> list:
    result = event_result(url, start_event(url, event, data, element=element), timeout=120)
    assert result["success"], result
    return list(result["output"]["data"])


def _file_data(path: str) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


def _post_files(url: str, files: list[tuple[str, bytes]]) -> list[str]:
    """One multipart request carrying ``files``; the paths Gradio stored them under."""
    response = httpx.post(
        f"{url}/gradio_api/upload",
        files=[("files", (name, data, "text/plain")) for name, data in files],
        timeout=120,
    )
    assert response.status_code == 200, response.text
    return list(response.json())


def test_server_stays_responsive_and_a_second_rebuild_says_one_is_running(hostile_server):
    """A rebuild reads a file that takes minutes to extract: meanwhile the page and a question
    are answered within 2 s each, a second Rebuild says one is running, and the first ends by
    skipping the file after the time limit."""
    from gradio_client import Client

    slow = shared_stream_pdf(hostile_server.corpus / "slow.pdf", pages=100, stream_bytes=1 << 20)
    (hostile_server.corpus / "brackets.md").write_text("Brackets\n\n" + "[" * 1_000_000 + "\n")
    client = Client(f"{hostile_server.url}/", verbose=False)
    first = start_event(hostile_server.url, "click", [], element="qa-rebuild")
    time.sleep(1.5)  # the workers have started; one is in the PDF
    try:
        (status, _) = _run(hostile_server.url, "qa-rebuild", "click", [])
        assert status.startswith("A rebuild is already running")
        latencies = []
        for _ in range(3):
            started = time.perf_counter()
            assert httpx.get(f"{hostile_server.url}/", timeout=10).status_code == 200
            answer = client.predict("When does the ferry leave the pier?", api_name="/ask")
            latencies.append(time.perf_counter() - started)
            assert answer["citations"]
        # The page and an answer, together, in under 2 s (the median: a shared machine has spikes).
        assert sorted(latencies)[1] < 2, latencies
        result = event_result(hostile_server.url, first, timeout=120)
        status = result["output"]["data"][0]
        assert "skipped slow.pdf: took longer than 6 s to read" in status, status
    finally:
        slow.unlink()
        (hostile_server.corpus / "brackets.md").unlink()


def test_an_upload_never_replaces_a_document_without_consent(hostile_server):
    corpus = hostile_server.corpus
    original = (corpus / "ferry.txt").read_bytes()
    (stored,) = _post_files(
        hostile_server.url, [("ferry.txt", b"Forged\n\nThe ferry was cancelled for good.\n")]
    )
    status, *_ = _run(hostile_server.url, "qa-upload", "upload", [[_file_data(stored)], False])
    assert "refused: 'ferry.txt' already exists in the corpus; choose Replace" in status.replace("\\", "")
    assert (corpus / "ferry.txt").read_bytes() == original
    assert not Path(stored).exists(), "the temporary upload is deleted once handled"

    (stored,) = _post_files(
        hostile_server.url, [("ferry.txt", b"Ferry notes\n\nThe ferry now leaves at ten.\n")]
    )
    status, *_ = _run(hostile_server.url, "qa-upload", "upload", [[_file_data(stored)], True])
    assert "replaced ferry.txt" in status
    assert b"at ten" in (corpus / "ferry.txt").read_bytes()
    assert (corpus / PREVIOUS_VERSIONS / "ferry.txt").read_bytes() == original  # kept until a build commits
    umask = os.umask(0o022)
    os.umask(umask)
    assert (
        stat.S_IMODE((corpus / "ferry.txt").stat().st_mode) == 0o666 & ~umask
    )  # not a private temp file's 0600

    status, _ = _run(hostile_server.url, "qa-rebuild", "click", [])
    assert "Index rebuilt" in status
    assert not (corpus / PREVIOUS_VERSIONS).exists()


def test_concurrent_uploads_of_one_name_add_it_once(tmp_path):
    corpus = tmp_path / "corpus"
    uploads = []
    for n in range(32):
        upload = tmp_path / f"upload-{n}.txt"
        upload.write_text(f"Version {n}\n\n" + f"Upload number {n} of the same name. " * 2000)
        uploads.append(upload)
    with ThreadPoolExecutor(32) as pool:
        outcomes = list(pool.map(lambda u: _try_upload(u, corpus), uploads))
    assert outcomes.count("added report.txt") == 1
    assert all("already exists" in o for o in outcomes if o != "added report.txt")
    winner = outcomes.index("added report.txt")
    assert (corpus / "report.txt").read_bytes() == uploads[winner].read_bytes()  # whole, not a mix
    assert [p.name for p in corpus.iterdir()] == ["report.txt"]  # no partial copies left


def _try_upload(upload: Path, corpus: Path) -> str:
    try:
        return save_upload(upload, corpus, "report.txt")
    except UploadError as exc:
        return str(exc)


def test_a_document_can_be_deleted_from_the_page_and_upload_temp_files_do_not_pile_up(hostile_server):
    corpus = hostile_server.corpus
    payload = [
        (f"bulk-{n}.txt", f"Bulk {n}\n\nBulk upload number {n} arrived.\n".encode() + b" " * (2 << 20))
        for n in range(10)
    ]
    stored = _post_files(hostile_server.url, payload)  # 10 files of 2 MB in one request
    assert all(Path(p).exists() for p in stored)
    status, *_ = _run(hostile_server.url, "qa-upload", "upload", [[_file_data(p) for p in stored], False])
    assert status.count("added bulk-") == 10
    assert not any(Path(p).exists() for p in stored)

    status, _, choices = _run(hostile_server.url, "qa-delete", "click", ["bulk-3.txt"])
    assert status.startswith("deleted bulk-3.txt; press **Rebuild index**")
    assert not (corpus / "bulk-3.txt").exists() and (corpus / PREVIOUS_VERSIONS / "bulk-3.txt").exists()
    assert "bulk-3.txt" not in json.dumps(choices)
    status, *_ = _run(hostile_server.url, "qa-delete", "click", ["../index/CURRENT"])
    assert "not a document in the corpus folder" in status and (hostile_server.index_dir / "CURRENT").exists()
    for n in range(10):
        with contextlib.suppress(FileNotFoundError):
            (corpus / f"bulk-{n}.txt").unlink()


@pytest.mark.parametrize("k", [2.5, "five", [3], None, True])
def test_ask_with_a_k_that_is_not_a_whole_number_says_so(hostile_server, k):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(f"{hostile_server.url}/", verbose=False)
    with pytest.raises(AppError, match="k must be a whole number of passages"):
        client.predict("When does the ferry leave?", k, api_name="/ask")
    assert client.predict("When does the ferry leave?", 3.0, api_name="/ask")["citations"]


def test_logins_are_rate_limited_per_client(hostile_server):
    from qa.web import LOGIN_ATTEMPTS, launch

    port = free_port()
    with registered_encoder(hostile_server.encoder):
        demo = launch(
            index_dir=hostile_server.index_dir,
            port=port,
            auth=("ana", "s3cret"),
            engine=Engine(hostile_server.index_dir, encoders=[hostile_server.encoder]),
            block=False,
        )
    try:
        login = f"http://127.0.0.1:{port}/login"
        codes = [
            httpx.post(login, data={"username": "ana", "password": f"guess{n}"}).status_code
            for n in range(LOGIN_ATTEMPTS)
        ]
        assert codes == [400] * LOGIN_ATTEMPTS
        refused = httpx.post(login, data={"username": "ana", "password": "s3cret"})
        assert refused.status_code == 429 and "Too many failed logins" in refused.text
        assert int(refused.headers["retry-after"]) > 0
    finally:
        demo.close()


@pytest.mark.parametrize(
    ("given", "error"),
    [
        (["--auth", "alice"], "The login in --auth must be USER:PASSWORD"),
        (["--auth", "alice:"], "The password in --auth is empty"),
        (["--auth", ":secret"], "The login in --auth must be USER:PASSWORD"),
        (["--auth-file", "/nonexistent/login"], "Cannot read --auth-file '/nonexistent/login'"),
    ],
)
def test_malformed_logins_are_one_line_errors(tmp_path, capsys, given, error):
    code = main(["serve", "--index", str(tmp_path / "index"), "--corpus", str(tmp_path / "nowhere"), *given])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.startswith(f"error: {error}") and err.count("\n") == 1, err


def test_the_login_can_come_from_the_environment_or_a_file(tmp_path, monkeypatch):
    from qa.cli import build_parser, login_from

    secret = tmp_path / "login"
    secret.write_text("ana:from file\n")
    monkeypatch.setenv("QA_AUTH", "ana:from environment")
    assert login_from(build_parser().parse_args(["serve"])) == ("ana", "from environment")
    assert login_from(build_parser().parse_args(["serve", "--auth-file", str(secret)])) == (
        "ana",
        "from file",
    )
    monkeypatch.delenv("QA_AUTH")
    assert login_from(build_parser().parse_args(["serve"])) is None


# --- resource failures: one line, the old index live ---------------------------------------

_CLI_WITH_FILE_LIMIT = """
import resource, signal, sys
from qa.testing import register_encoder
from tests.fakes import HashingEncoder
register_encoder(HashingEncoder())
# A file-size limit makes every write past it fail with EFBIG, as a full disk fails with
# ENOSPC: at whatever layer writes (sqlite, FAISS, the manifest).
if sys.argv[1] != "none":
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.RLIM_INFINITY))
from qa.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("limit", [20_000, 200_000])
def test_a_full_disk_during_a_build_is_one_line_and_the_old_index_stays(tmp_path, fake_encoder, limit):
    corpus = _corpus(tmp_path)
    index_dir = tmp_path / "index"
    fake_build(corpus, index_dir, fake_encoder)
    before = open_index(index_dir).path
    for n in range(40):
        (corpus / f"log-{n}.txt").write_text(
            f"Log {n}\n\n" + f"Entry {n}: the harbour crane lifted cargo. " * 200
        )
    result = subprocess.run(
        [sys.executable, "-c", _CLI_WITH_FILE_LIMIT, str(limit), "build", "--corpus", str(corpus),
         "--index", str(index_dir)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert (
        last
        == f"error: Could not write the index at '{index_dir}': the disk is full or refused the write; free some space and run the build again. The index is unchanged."
    )
    assert "Traceback" not in result.stderr
    after = open_index(index_dir)
    assert after.path == before and set(after.document_hashes) == {"good.txt"}
    assert not list(index_dir.glob(".staging-*")), "the failed build's staging folder is removed"


# --- rendering: document text is text ----------------------------------------------------------


class _Listener:
    """A web server on a free loopback port that records every request it gets."""

    def __init__(self) -> None:
        requests: list[str] = []

        class Record(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/gif")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.requests = requests
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Record)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.browser
def test_links_and_images_in_a_document_never_reach_the_browser_as_markup(browser, tmp_path, encoder):  # noqa: F811
    """A document's Markdown image is a tracking pixel and its ``[4](url)`` a link dressed as
    a citation: the answer shows both as text, and no request leaves for their URLs."""
    listener = _Listener()
    steal = f"http://127.0.0.1:{listener.port}"
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "lighthouse.txt").write_text(  # plain text keeps the markup verbatim
        "Quillon lighthouse\n\n"
        f"The Quillon lighthouse keeper logs every passing ship ![1]({steal}/pixel?c=document) in a red "
        f"ledger [4]({steal}/click) kept at {steal}/bare, www.example.org, keeper@example.org and "
        f"<img src='{steal}/raw-html'>.\n"  # one sentence: the answer holds all of it
    )
    settings = Settings(multilingual=False)
    build_index(corpus, tmp_path / "index", settings=settings, encoder=encoder)
    port = free_port()
    from qa.web import launch

    # About rendering, not about when to answer: an engine that never abstains sends the
    # hostile sentence through the chat's Markdown as the answer itself.
    engine = Engine(
        tmp_path / "index",
        thresholds=Thresholds(answer=0.0, cross_lingual=0.0),
    )
    demo = launch(corpus_dir=corpus, index_dir=tmp_path / "index", port=port, engine=engine, block=False)
    page = browser.new_page()
    try:
        page.set_default_timeout(60_000)
        page.goto(f"http://127.0.0.1:{port}/")
        page.locator("#qa-question textarea").fill(
            "Where does the Quillon lighthouse keeper log every passing ship?"
        )
        page.locator("#qa-ask").click()
        page.locator("#qa-chat .qa-sources").wait_for()
        page.locator("#qa-chat .qa-sources summary").first.click()
        page.wait_for_timeout(1000)  # time for any image to load
        # Shown as text: in the answer when the engine answers with it, in the sources always.
        answer = page.locator("#qa-chat .bot-row").nth(-2).inner_text()
        sources = page.locator("#qa-chat .qa-sources").last.inner_text()
        for shown in [sources] + ([] if "do not answer" in answer else [answer]):
            assert f"![1]({steal}/pixel?c=document)" in shown, shown
            assert f"[4]({steal}/click)" in shown and f"<img src='{steal}/raw-html'>" in shown
        links = page.eval_on_selector_all("#qa-chat a[href]", "(links) => links.map((a) => a.href)")
        assert not [link for link in links if "127.0.0.1" in link or "example.org" in link], links
        assert page.locator(f"#qa-chat img[src*='{listener.port}']").count() == 0
        assert listener.requests == []
    finally:
        page.close()
        demo.close()
        listener.close()


def test_an_index_folder_without_write_permission_is_one_line(tmp_path):
    corpus = _corpus(tmp_path)
    index_dir = tmp_path / "index"
    index_dir.mkdir()
    index_dir.chmod(0o555)
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:  # root writes anywhere; without its capabilities it is held to the mode
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root and setpriv (util-linux) is missing: cannot deny a write")
        prefix = (setpriv, "--inh-caps=-all", "--bounding-set=-all")
    result = subprocess.run(
        [*prefix, sys.executable, "-c", _CLI_WITH_FILE_LIMIT, "none", "build", "--corpus", str(corpus),
         "--index", str(index_dir), "--model", HashingEncoder.name, "--no-multilingual"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: Could not write the index at '{index_dir}': permission denied; make the folder writable, "
        "or pass --index with a folder you can write. The index is unchanged."
    )
    assert "Traceback" not in result.stderr
