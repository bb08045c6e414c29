"""The corpus folder: which files are documents, their identity and hashes, how they differ
from an index, and saving uploads into it safely.

Reading one file (its format, cleaning, title, date) is ``ingest``'s job.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tempfile
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

    Directory symlinks are not followed (no loops). Files that cannot be documents (links
    that lead nowhere or in a circle, pipes and devices, unreadable or oversized files,
    names that are not valid UTF-8) are reported as skipped with the reason, never raised,
    so one bad file cannot stop a build.
    """
    root_path = Path(root)
    if not root_path.is_dir():
        raise CorpusError(
            f"Corpus folder '{root}' does not exist. Create it and put documents in it "
            f"({', '.join(SUPPORTED_SUFFIXES)}), or pass --corpus PATH."
        )
    found: list[CorpusFile] = []
    skipped: list[SkippedFile] = []
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
                found.append(CorpusFile(source, path, file_sha256(path)))
            except OSError as exc:
                skipped.append(SkippedFile(source, f"cannot be read: {exc.strerror or exc}"))
    return found, skipped


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


def save_upload(source: str | os.PathLike[str], corpus_dir: Path, name: str | None = None) -> str:
    """Copy an uploaded file into ``corpus_dir`` and say what happened.

    A same-named document in the corpus folder is replaced; nothing outside it ever is:
    the copy is written beside the target and renamed over it (a link there is replaced,
    not followed).
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
    replaced = target.exists() or target.is_symlink()
    # A hidden name: a corpus scan ignores the partial copy.
    handle, partial = tempfile.mkstemp(prefix=".upload-", dir=corpus_dir)
    os.close(handle)
    try:
        shutil.copyfile(source, partial)
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return f"{'replaced' if replaced else 'added'} {target_name}"
