"""The corpus folder: which files are documents, their identity and hashes, how they differ
from an index, and saving uploads into it safely.

Reading one file (its format, cleaning, title, date) is ``ingest``'s job.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import stat
import threading
from pathlib import Path

from qa.errors import CorpusError, UploadError
from qa.ingest import MAX_FILE_BYTES, SUPPORTED_SUFFIXES, iter_documents
from qa.records import CorpusChanges, CorpusFile, Document, SkippedFile

MAX_UPLOAD_BYTES = 50 * 1024 * 1024


def _is_ignored(name: str) -> bool:
    # Hidden files, editor backups and Office lock files are never documents.
    return name.startswith((".", "~$")) or name.endswith(("~", ".tmp", ".swp"))


def scan_corpus(root: str | os.PathLike[str]) -> tuple[list[CorpusFile], list[SkippedFile]]:
    """List the supported files under ``root`` with their content hashes.

    Directory symlinks are not followed (no loops). A file link is followed only to a file
    inside the corpus folder, and a file reached by several paths is listed once (under its
    own name rather than a link's). Files that cannot be documents (links that lead outside,
    nowhere or in a circle, pipes and devices, unreadable or oversized files, names that are
    not valid UTF-8) are reported as skipped with the reason, never raised, so one bad file
    cannot stop a build.
    """
    root_path = Path(root)
    if not root_path.is_dir():
        raise CorpusError(
            f"Corpus folder '{root}' does not exist. Create it and put documents in it "
            f"({', '.join(SUPPORTED_SUFFIXES)}), or pass --corpus PATH."
        )
    found: list[CorpusFile] = []
    skipped: list[SkippedFile] = []
    inside = root_path.resolve()
    links: list[tuple[str, Path, Path]] = []  # (source, path, target) of links to files inside
    for dirpath, dirnames, filenames in os.walk(root_path):
        dirnames[:] = sorted(d for d in dirnames if not _is_ignored(d))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            source = path.relative_to(root_path).as_posix()
            if _is_ignored(name):
                continue
            if not _is_utf8(source):
                # The path is the document's identity in the index, which stores UTF-8.
                skipped.append(
                    SkippedFile(_printable(source), "file name is not valid UTF-8; rename the file")
                )
                continue
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                skipped.append(SkippedFile(source, f"unsupported file type '{path.suffix}'"))
                continue
            try:
                info = path.stat()
                if not stat.S_ISREG(info.st_mode):
                    # Opening a named pipe would wait forever for a writer.
                    skipped.append(SkippedFile(source, "not a regular file (a pipe, socket or device)"))
                    continue
                if info.st_size > MAX_FILE_BYTES:
                    skipped.append(SkippedFile(source, f"larger than {MAX_FILE_BYTES >> 20} MB"))
                    continue
                if path.is_symlink():
                    target = Path(os.path.realpath(path))
                    if not target.is_relative_to(inside):
                        # Never read: a link must not publish /etc/passwd as a citation.
                        skipped.append(SkippedFile(source, _OUTSIDE))
                    else:
                        links.append((source, path, target))
                    continue
                found.append(CorpusFile(source, path, file_sha256(path)))
            except OSError as exc:
                skipped.append(SkippedFile(source, f"cannot be read: {exc.strerror or exc}"))
    indexed_as = {Path(os.path.realpath(f.path)): f.source for f in found}
    for source, path, target in links:
        if target in indexed_as:
            skipped.append(SkippedFile(source, f"a link to {indexed_as[target]}, which is indexed already"))
            continue
        indexed_as[target] = source
        try:
            found.append(CorpusFile(source, path, file_sha256(path)))
        except OSError as exc:
            skipped.append(SkippedFile(source, f"cannot be read: {exc.strerror or exc}"))
    found.sort(key=lambda file: file.source)
    return found, skipped


_OUTSIDE = "a link to a file outside the corpus folder; copy the file into the folder to index it"


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes of the name, kept as lone surrogates
        return False
    return True


def _printable(name: str) -> str:
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file's bytes: a document's version."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_documents(root: str | os.PathLike[str]) -> tuple[list[Document], list[SkippedFile]]:
    """Read and clean every supported file under ``root``; report the ones skipped."""
    files, skipped = scan_corpus(root)
    documents = []
    for file, result in iter_documents(files):
        if isinstance(result, CorpusError):
            skipped.append(SkippedFile(file.source, str(result)))
        else:
            documents.append(result)
    return documents, skipped


def diff_corpus(files: list[CorpusFile], indexed: dict[str, str]) -> CorpusChanges:
    """How ``files`` differ from the documents an index holds (``{source: sha256}``)."""
    current = {f.source: f.sha256 for f in files}
    return CorpusChanges(
        added=sorted(s for s in current if s not in indexed),
        changed=sorted(s for s, h in current.items() if s in indexed and indexed[s] != h),
        removed=sorted(s for s in indexed if s not in current),
        unchanged=sorted(s for s, h in current.items() if indexed.get(s) == h),
    )


# --- uploads --------------------------------------------------------------------------------


def safe_upload_name(name: str) -> str:
    """The file name an upload is stored under, or ``UploadError`` saying why it cannot be.

    Only the last path component is kept (no folders, no ``..``); characters other than
    letters, digits and `` .()+,-_`` become ``_``; hidden and unsupported names are refused.
    """
    base = re.split(r"[\\/]", name)[-1]
    base = re.sub(r"[\x00-\x1f\x7f]", "", base).strip()
    if not base or base.startswith((".", "~")):  # hidden files and Office lock files
        raise UploadError(f"'{name}' is not an acceptable file name (empty or hidden).")
    base = re.sub(r"[^\w .()+,-]", "_", base)[-200:]
    if Path(base).suffix.lower() not in SUPPORTED_SUFFIXES:
        raise UploadError(f"'{base}' is not a supported document type; use {', '.join(SUPPORTED_SUFFIXES)}.")
    return base


def save_upload(
    source: str | os.PathLike[str], corpus_dir: Path, name: str | None = None, *, replace: bool = False
) -> str:
    """Copy an uploaded file into ``corpus_dir`` and say what happened.

    A same-named document is refused (``UploadError``) unless ``replace`` is true; then the
    current version moves to ``PREVIOUS_VERSIONS`` and stays there until the next build
    commits. Nothing outside the corpus folder is ever written: the copy is made beside the
    target and renamed onto it (a link there is moved aside, not followed).
    """
    source = Path(source)
    target_name = safe_upload_name(source.name if name is None else name)
    size = source.stat().st_size
    if size > MAX_UPLOAD_BYTES:
        raise UploadError(
            f"'{target_name}' is {size / 2**20:.0f} MB; the limit is {MAX_UPLOAD_BYTES >> 20} MB."
        )
    corpus_dir.mkdir(parents=True, exist_ok=True)
    target = corpus_dir / target_name
    if target.is_dir():
        raise UploadError(f"'{target_name}' is a folder in the corpus; rename the file and upload it again.")
    # A hidden name: a corpus scan ignores the partial copy. Created like any new file (the
    # umask decides its mode), not private like a temporary file.
    partial = corpus_dir / f".upload-{secrets.token_hex(8)}"
    with (
        source.open("rb") as reader,
        open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as writer,
    ):
        shutil.copyfileobj(reader, writer)
    try:
        with _replacing:
            if not replace:
                try:
                    os.link(partial, target, follow_symlinks=False)  # fails if the name exists, atomically
                except FileExistsError:
                    raise UploadError(
                        f"'{target_name}' already exists in the corpus; choose Replace to upload it over "
                        "the current version (which is kept until the next rebuild)."
                    ) from None
                return f"added {target_name}"
            existed = _set_aside(target, corpus_dir)
            os.replace(partial, target)
            return f"{'replaced' if existed else 'added'} {target_name}"
    finally:
        partial.unlink(missing_ok=True)


def delete_document(corpus_dir: Path, source: str) -> str:
    """Move the corpus file ``source`` (a path relative to ``corpus_dir``) to
    ``PREVIOUS_VERSIONS``, where it stays until the next build commits; say what happened."""
    target = corpus_dir / source
    inside = corpus_dir.resolve()
    if ".." in Path(source).parts or not target.parent.resolve().is_relative_to(inside):
        raise UploadError(f"'{source}' is not a document in the corpus folder.")
    with _replacing:
        if not _set_aside(target, corpus_dir):
            raise UploadError(f"'{source}' is not in the corpus folder (deleted already?).")
    return f"deleted {source}"


def discard_previous_versions(corpus_dir: Path) -> None:
    """Forget the versions replaced or deleted since the last build (it has committed)."""
    shutil.rmtree(corpus_dir / PREVIOUS_VERSIONS, ignore_errors=True)


# Replaced and deleted documents wait here, hidden from corpus scans, for the next build.
PREVIOUS_VERSIONS = ".qa-previous"
_replacing = threading.Lock()  # one replace or delete at a time moves versions aside


def _set_aside(target: Path, corpus_dir: Path) -> bool:
    """Move ``target`` (a file or a link, never followed) into ``PREVIOUS_VERSIONS``; False
    when there is nothing there."""
    if not (target.is_symlink() or target.is_file()):
        return False
    kept = corpus_dir / PREVIOUS_VERSIONS / target.relative_to(corpus_dir)
    kept.parent.mkdir(parents=True, exist_ok=True)
    os.replace(target, kept)
    return True
