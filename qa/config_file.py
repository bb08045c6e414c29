"""The command line's configuration: ``qa.toml`` (in the working folder, or ``--config``),
then ``QA_*`` environment variables, then flags; each overrides the one before.

``load_config`` reads the first two into option values named like the CLI's flags; the
CLI turns them into its flags' defaults, so a flag given on the command line still wins.

```toml
corpus = "corpus"
index = "index"
host = "127.0.0.1"
port = 7860
api_keys = ["a-long-random-key"]   # or QA_API_KEYS=key1,key2
model = "/models/my-sentence-transformer"  # build settings: model, chunk_size, chunk_overlap, multilingual
debounce = 1.0                     # qa watch: seconds of quiet before a rebuild
ray = "auto"                       # qa build: embed on this Ray cluster (pip install 'qa[ray]')

[retrieval]
k = 6
dense = true
lexical = true
rerank = true
cross_encoder = "/models/my-cross-encoder"
```
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qa.errors import OptionsError

DEFAULT_FILE = "qa.toml"

# option: (type, environment variable). Retrieval options live in the [retrieval] table.
_TOP: dict[str, tuple[type, str]] = {
    "corpus": (str, "QA_CORPUS"),
    "index": (str, "QA_INDEX"),
    "host": (str, "QA_HOST"),
    "port": (int, "QA_PORT"),
    "api_keys": (list, "QA_API_KEYS"),
    "model": (str, "QA_MODEL"),
    "chunk_size": (int, "QA_CHUNK_SIZE"),
    "chunk_overlap": (int, "QA_CHUNK_OVERLAP"),
    "multilingual": (bool, "QA_MULTILINGUAL"),
    "debounce": (float, "QA_DEBOUNCE"),
    "ray": (str, "QA_RAY"),
}
_RETRIEVAL: dict[str, tuple[type, str]] = {
    "k": (int, "QA_K"),
    "dense": (bool, "QA_DENSE"),
    "lexical": (bool, "QA_LEXICAL"),
    "rerank": (bool, "QA_RERANK"),
    "cross_encoder": (str, "QA_CROSS_ENCODER"),
}
OPTIONS = {**_TOP, **_RETRIEVAL}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _check(name: str, value: Any, kind: type, where: str) -> Any:
    if kind is list:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    elif kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    elif isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
        return value
    expected = "a list of strings" if kind is list else f"a {kind.__name__}"
    raise OptionsError(f"{where}: '{name}' must be {expected}, not {value!r}.")


def _from_env(name: str, text: str, kind: type, variable: str) -> Any:
    text = text.strip()
    if kind is list:
        return [item.strip() for item in text.split(",") if item.strip()]
    if kind is bool:
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise OptionsError(f"{variable}={text!r}: use true or false.")
    try:
        return kind(text)
    except ValueError:
        raise OptionsError(f"{variable}={text!r}: '{name}' must be a {kind.__name__}.") from None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise OptionsError(f"Cannot read the config file '{path}': {exc.strerror or exc}.") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise OptionsError(f"The config file '{path}' is not valid TOML: {exc}.") from exc
    retrieval = data.pop("retrieval", {})
    if not isinstance(retrieval, dict):
        raise OptionsError(f"{path}: 'retrieval' must be a table ([retrieval]).")
    values = {}
    for table, known, prefix in ((data, _TOP, ""), (retrieval, _RETRIEVAL, "retrieval.")):
        for name, value in table.items():
            if name not in known:
                raise OptionsError(
                    f"{path}: unknown option '{prefix}{name}'; known: {', '.join(prefix + k for k in known)}."
                )
            values[name] = _check(prefix + name, value, known[name][0], str(path))
    return values


def load_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The options set by the config file and the environment, the latter winning.

    ``path`` names the file (it must exist); ``None`` reads ``qa.toml`` in the working
    folder when there is one. Raises ``OptionsError`` for an unreadable file, an unknown
    option or a value of the wrong type, naming it."""
    environ = os.environ if environ is None else environ
    file = Path(path) if path is not None else Path(DEFAULT_FILE)
    values = _read_file(file) if path is not None or file.is_file() else {}
    for name, (kind, variable) in OPTIONS.items():
        if variable in environ:
            values[name] = _from_env(name, environ[variable], kind, variable)
    return values
