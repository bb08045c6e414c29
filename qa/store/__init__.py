"""The on-disk index: ``reader`` (``Index``, ``open_index``), ``vectors`` (the FAISS
policy) and ``writer`` (staging, fsync, publish, the build lock).

It stores what it is given; the build that feeds it is ``qa.build``.
"""

from qa.store.reader import DocumentInfo, Index, StoredChunk, open_index

__all__ = ["DocumentInfo", "Index", "StoredChunk", "open_index"]
