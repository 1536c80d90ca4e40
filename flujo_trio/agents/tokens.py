"""Counting tokens before a request is sent, offline.

With ``tiktoken`` installed *and* its encoding files already on disk (tiktoken's
cache, ``TIKTOKEN_CACHE_DIR``), counts come from the real tokenizer. tiktoken
fetches missing files from the network with a blocking request that has no timeout;
a reservation must never wait on that (nor fail on a machine without network), so
an encoding that is not on disk is never loaded here, and the count falls back to a
generous character-based estimate. Populate the cache once where there is network:
``python -c "import tiktoken; tiktoken.get_encoding('o200k_base')"``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from typing import Any, Protocol

#: Where tiktoken's own encodings are published (the cache is keyed by this URL).
_ENCODING_URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
#: The encoding for models tiktoken does not know (current OpenAI models use it).
_DEFAULT_ENCODING = "o200k_base"
#: Margin over a real count, for tokenizers of other vendors' models.
_MARGIN = 1.1


class Encoding(Protocol):
    """The part of ``tiktoken.Encoding`` that counting needs."""

    def encode_ordinary(self, text: str) -> list[int]: ...


def estimate_tokens(value: Any, encoding: Encoding | None = None) -> int:
    """A generous token count for text (or JSON-able data): an upper bound for reservations.

    With an ``encoding``, the real count plus 10% and a small margin (other vendors'
    tokenizers split differently); without one, one token per three characters plus
    a margin (real tokenizers average about four characters a token for English).
    """
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if encoding is not None:
        return math.ceil(len(encoding.encode_ordinary(text)) * _MARGIN) + 8
    return len(text) // 3 + 8


def count_tokens(text: str, encoding: Encoding | None = None) -> int:
    """A best guess (not a bound) of the tokens in generated text, for partial usage.

    Streamed pieces are about a token each, so a piece counts at least one.
    """
    if encoding is not None:
        return len(encoding.encode_ordinary(text))
    return math.ceil(len(text) / 4)


def offline_encoding(model: str) -> Encoding | None:
    """tiktoken's encoding for ``model`` if it loads without the network, else None."""
    try:
        import tiktoken
        import tiktoken.model
    except ImportError:
        return None
    try:
        name = tiktoken.model.encoding_name_for_model(model)
    except KeyError:
        name = _DEFAULT_ENCODING
    if not _cached(name):
        return None
    try:
        return tiktoken.get_encoding(name)
    except Exception:  # a corrupt cache file: tiktoken would go to the network next
        return None


def _cached(name: str) -> bool:
    """Whether tiktoken finds ``name``'s file in its cache (its own lookup, mirrored)."""
    directory = os.environ.get("TIKTOKEN_CACHE_DIR")
    if directory is None:
        directory = os.environ.get("DATA_GYM_CACHE_DIR")
    if directory is None:
        directory = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if not directory:  # caching switched off: every load would download
        return False
    key = hashlib.sha1(_ENCODING_URL.format(name).encode()).hexdigest()
    return os.path.exists(os.path.join(directory, key))
