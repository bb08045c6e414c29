"""The command line's shortcut to a running ``qa serve``: ask its REST API (``qa.api``)
instead of loading the models again.

``find_server`` asks the configured address for its health, briefly; a server that answers
and serves the same index folder is used, anything else (nothing listening, another index,
a key it refuses) means the caller loads the models itself. Standard library only: the
point is to answer before heavy imports would have finished.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.conversations import answer_from_json
from qa.errors import QAError
from qa.records import Answer, Citation

API_PREFIX = "/api/v1"  # qa.api.API_PREFIX, not imported: that module pulls in FastAPI
PROBE_SECONDS = 0.5  # a server on this machine answers its health in milliseconds
ANSWER_SECONDS = 300.0
# Never through a proxy from the environment: the server is the one this machine runs.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServerError(QAError):
    """The running server refused the request; its message says why and what to do."""


@dataclass(frozen=True)
class Server:
    """A running ``qa serve`` at ``url`` (``http://host:port``) that serves our index."""

    url: str
    api_key: str | None = None

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(
            f"{self.url}{API_PREFIX}{path}", json.dumps(body).encode(), headers, method="POST"
        )
        try:
            with _OPENER.open(request, timeout=ANSWER_SECONDS) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read()).get("detail")
            except ValueError:
                detail = None
            raise ServerError(str(detail or f"The server at {self.url} answered {exc.code}.")) from None
        except (urllib.error.URLError, TimeoutError, ValueError) as exc:
            raise ServerError(
                f"The server at {self.url} stopped answering ({exc}); run the command again "
                "(it loads the models itself when no server answers)."
            ) from None

    def ask(self, question: str, *, history: Sequence[str] = (), k: int | None = None) -> Answer:
        """The server's answer to ``question`` after the earlier questions ``history``."""
        data = self._post("/ask", {"question": question, "history": list(history), "k": k})
        return answer_from_json(data)  # its "text" is rendered from the record again

    def search(self, query: str, *, k: int) -> list[Citation]:
        """The server's best passages for ``query``, as citations."""
        return [Citation(**c) for c in self._post("/search", {"query": query, "k": k})]


def find_server(url: str, index_dir: str | os.PathLike[str], api_keys: Sequence[str] = ()) -> Server | None:
    """The server at ``url`` when it answers quickly and serves ``index_dir``, else None."""
    key = next((k for k in api_keys if k), None)
    request = urllib.request.Request(f"{url.rstrip('/')}{API_PREFIX}/health")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with _OPENER.open(request, timeout=PROBE_SECONDS) as response:
            health = json.loads(response.read())
    except (urllib.error.URLError, TimeoutError, ValueError, OSError):
        return None
    served = health.get("index") if isinstance(health, dict) else None
    if served != str(Path(index_dir).resolve()):
        return None  # another index (or a server too old to say which)
    return Server(url.rstrip("/"), key)
